//! Checkpoints of a run: `OUT/checkpoint-NNNNNNN/` in the release layout plus
//! `trainer_state.json` (step, recipe) and `trainer_state.safetensors` (AdamW
//! moments), all inside the one folder that is renamed into place, so a
//! checkpoint is either whole or absent. Only the last K are kept.

use std::path::{Path, PathBuf};

use c3_torch::tch::Tensor;
use c3_torch::{C3Model, save_model};

use crate::error::{Error, Result};
use crate::optim::AdamW;
use crate::recipe::Recipe;

pub const STATE_JSON: &str = "trainer_state.json";
pub const STATE_TENSORS: &str = "trainer_state.safetensors";
const PREFIX: &str = "checkpoint-";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.into(),
        source: e,
    }
}

/// Saves model + optimizer at `opt.step` and prunes old checkpoints.
pub fn save(
    out: &Path,
    vs: &c3_torch::tch::nn::VarStore,
    model: &C3Model,
    opt: &AdamW,
    recipe: &Recipe,
    tokenizer: &Path,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    // A run killed while saving left its temporary folders: they go now.
    c3_core::staging::remove_dead_leftovers(out, &[".state-", ".partial-", ".old-"]);
    let tensors: Vec<(String, Tensor)> = opt
        .params
        .iter()
        .flat_map(|(n, p)| {
            [
                (format!("m.{n}"), p.m.shallow_clone()),
                (format!("v.{n}"), p.v.shallow_clone()),
            ]
        })
        .collect();
    let dtype = c3_core::DType::parse(&recipe.model.save_dtype).unwrap_or(c3_core::DType::F32);
    let dest = out.join(format!("{PREFIX}{:07}", opt.step));
    // The weights in the save dtype, the tokenizer, and the optimizer's moments twice
    // (written here, then copied into the checkpoint before the temporary copy goes).
    let weights: u64 = vs
        .variables()
        .values()
        .map(|t| (t.numel() * dtype.size()) as u64)
        .sum();
    let moments: u64 = tensors
        .iter()
        .map(|(_, t)| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
        .sum();
    let tok = std::fs::metadata(tokenizer).map_or(0, |m| m.len());
    let needed = weights + tok + 2 * moments;
    c3_core::room::check(out, "the checkpoint", needed)?;
    let tmp = out.join(format!(".state-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let written = (|| {
        let st = tmp.join(STATE_TENSORS);
        Tensor::write_safetensors(&tensors, &st)?;
        let js = tmp.join(STATE_JSON);
        let state = serde_json::json!({"step": opt.step, "recipe": recipe});
        std::fs::write(
            &js,
            serde_json::to_string_pretty(&state).unwrap_or_default(),
        )
        .map_err(io(&js))?;
        Ok::<_, Error>(save_model(vs, model, &dest, dtype, &[tokenizer, &st, &js])?)
    })();
    // Written or not, the temporary copy goes: a failed save leaves nothing behind.
    let _ = std::fs::remove_dir_all(&tmp);
    written.map_err(|e| c3_core::room::annotate(e, &dest, "the checkpoint", needed))?;
    prune(out, recipe.schedule.keep_last)?;
    Ok(dest)
}

/// Complete checkpoints of a run, oldest first.
pub fn list(out: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(out) else {
        return Ok(v);
    };
    for e in rd {
        let p = e.map_err(io(out))?.path();
        let step = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(step) = step
            && p.join(STATE_JSON).is_file()
        {
            v.push((step, p));
        }
    }
    v.sort();
    Ok(v)
}

fn prune(out: &Path, keep: usize) -> Result<()> {
    let all = list(out)?;
    for (_, p) in all.iter().take(all.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(p).map_err(io(p))?;
    }
    Ok(())
}

/// Restores AdamW moments and step from a checkpoint folder.
pub fn load_optimizer(dir: &Path, opt: &mut AdamW) -> Result<()> {
    let js = dir.join(STATE_JSON);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&js).map_err(io(&js))?)
        .map_err(|e| Error::Input(format!("{}: {e}", js.display())))?;
    opt.step = v["step"]
        .as_u64()
        .ok_or_else(|| Error::Input(format!("{}: no `step`", js.display())))?;
    let st = dir.join(STATE_TENSORS);
    let tensors: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&st)?.into_iter().collect();
    c3_torch::tch::no_grad(|| -> Result<()> {
        for (name, p) in opt.params.iter_mut() {
            for (key, dst) in [
                (format!("m.{name}"), &mut p.m),
                (format!("v.{name}"), &mut p.v),
            ] {
                let src = tensors
                    .get(&key)
                    .ok_or_else(|| Error::Input(format!("{}: `{key}` missing", st.display())))?;
                dst.copy_(src);
            }
        }
        Ok(())
    })
}
