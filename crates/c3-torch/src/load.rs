//! Moving weights between the release checkpoint (c3-core, memory-mapped) and a
//! tch VarStore whose variable names are the checkpoint keys.

use std::borrow::Cow;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::c3::C3Model;
use crate::error::{Error, Result};
use c3_core::checkpoint::{SaveOptions, WriteTensor, save_checkpoint};
use c3_core::config::ENCODER_DIR;
use c3_core::{Checkpoint, DType, TensorView};

const LLM1: &str = "llm1.";

fn kind_of(d: DType) -> Kind {
    match d {
        DType::F32 => Kind::Float,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
    }
}

/// A tch tensor holding a copy of a checkpoint tensor (in its stored dtype).
pub fn tensor_from_view(t: &TensorView<'_>) -> Result<Tensor> {
    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::f_from_data_size(t.data, &shape, kind_of(t.dtype))?)
}

/// Builds a model for `ck.config` on `device` with parameters of `kind`
/// (Float for the reference; BFloat16 to halve memory) and copies every
/// variable from the checkpoint.
pub fn load_model(ck: &Checkpoint, device: Device, kind: Kind) -> Result<(VarStore, C3Model)> {
    let mut vs = VarStore::new(device);
    let model = C3Model::new(&vs, &ck.config);
    tch::no_grad(|| -> Result<()> {
        for (name, mut var) in vs.variables() {
            let (store, key) = match name.strip_prefix(LLM1) {
                Some(k) => (&ck.llm1, k),
                None => (&ck.root, name.as_str()),
            };
            let src = store.get(key)?;
            if src.shape.iter().map(|&d| d as i64).collect::<Vec<_>>() != var.size() {
                return Err(Error::Input(format!(
                    "tensor `{key}` in {} has shape {:?}, the model expects {:?}",
                    src.path.display(),
                    src.shape,
                    var.size()
                )));
            }
            var.copy_(&tensor_from_view(&src)?);
        }
        Ok(())
    })?;
    vs.set_kind(kind);
    Ok((vs, model))
}

/// Writes the VarStore as a release-layout checkpoint in `dtype`, atomically,
/// copying the source checkpoint's tokenizer files along.
pub fn save_model(
    vs: &VarStore,
    model: &C3Model,
    dest: &Path,
    dtype: DType,
    tokenizer_files: &[&Path],
) -> Result<()> {
    let vars = vs.variables();
    let mut root = Vec::new();
    let mut llm1 = Vec::new();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let t = &vars[name];
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let t = t.shallow_clone();
        let tensor = WriteTensor::lazy(
            name.strip_prefix(LLM1).unwrap_or(name),
            dtype,
            shape,
            move || {
                // Converted one tensor at a time while the file is written.
                Cow::Owned(tensor_bytes(&t, dtype))
            },
        );
        if name.starts_with(LLM1) {
            llm1.push(tensor)
        } else {
            root.push(tensor)
        }
    }
    let mut cfg = model.config.clone();
    c3_core::presets::stamp_config(&mut cfg, dtype);
    let root_files = tokenizer_files
        .iter()
        .filter_map(|p| {
            Some((
                p.file_name()?.to_string_lossy().into_owned(),
                p.to_path_buf(),
            ))
        })
        .collect();
    let opts = SaveOptions {
        shard_bytes: None,
        root_files,
        overwrite: true,
    };
    save_checkpoint(dest, &cfg, &root, &llm1, &opts)?;
    debug_assert!(dest.join(ENCODER_DIR).is_dir());
    Ok(())
}

fn tensor_bytes(t: &Tensor, dtype: DType) -> Vec<u8> {
    let t = t
        .to_device(Device::Cpu)
        .to_kind(kind_of(dtype))
        .contiguous();
    let n = t.numel() * dtype.size();
    let mut out = vec![0u8; n];
    // Copy the raw storage; the tensor is contiguous and of the target kind.
    t.copy_data_u8(&mut out, t.numel());
    out
}
