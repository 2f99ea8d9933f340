//! Training parity with an independent implementation: the Rust trainer's loss
//! and gradients on one batch equal those of PyTorch + HF transformers' Qwen2
//! (`tools/train-reference/c3_ref.py parity`, CPU, fp32, eager attention).
//!
//! Fixtures (`tests/fixtures/parity/`): two small C3 models in the release
//! layout, `tied/` (both LLMs tie their embeddings, as the shipped models do)
//! and `untied/` (each has its own `lm_head`; the encoder's is never used),
//! their `*.golden.json` (passage ids, loss, per-tensor gradient statistics)
//! and `corpus.txt` (the passages' texts). Regenerate from the repository root:
//!
//! ```text
//! /work/pyref/bin/python tools/train-reference/c3_ref.py parity --out tests/fixtures/parity
//! ```
//!
//! (any Python with torch, transformers >= 5, safetensors and tokenizers).
//!
//! What must agree, per case: the tokenization of the texts, the decoder prompt,
//! the number of supervised tokens, the loss (absolute difference <= 1e-5), and
//! for every tensor, matched by name in both directions (root tensors by their
//! `model.safetensors` key, encoder tensors as `llm1.` + their
//! `llm1/model.safetensors` key, exactly the trainer's VarStore names):
//! * the gradient's L2 norm: |rust - python| <= 1e-4 * python + 1e-9
//!   (relative, with an absolute floor of 1e-9 for gradients that are
//!   (near) zero, e.g. the unused encoder `lm_head`);
//! * the gradient's dot product with the tensor's own weights (sign- and
//!   layout-sensitive, which a norm is not): |rust - python| <= 1e-4 *
//!   |grad| * |weights| + 1e-9, i.e. relative to its Cauchy-Schwarz bound.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use c3_core::presets::SplitMix64;
use c3_torch::tch::{Device, Kind};
use c3_train::{Recipe, Trainer, make_batch};
use serde_json::Value;

const LOSS_ABS: f64 = 1e-5;
const GRAD_REL: f64 = 1e-4;
const GRAD_FLOOR: f64 = 1e-9;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/parity")
}

/// A recipe that starts from the fixture checkpoint on the CPU in fp32.
fn recipe(case: &str, out: &Path) -> Recipe {
    let mut r = Recipe {
        name: format!("parity-{case}"),
        device: "cpu".into(),
        threads: 1,
        out_dir: Some(out.to_path_buf()),
        ..Recipe::default()
    };
    r.model.init = fixtures().join(case).display().to_string();
    r.data.paths = vec![fixtures().join("corpus.txt")];
    (r.data.min_tokens, r.data.max_tokens, r.data.held_out) = (4, 8, 1);
    r.data.word_dropout = 0.0;
    r.optim.precision = "fp32".into();
    r.validate().unwrap();
    r
}

fn f64s(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// (grad norm, grad . weights, weight norm) of every variable, grad 0 where none reached it.
fn grad_stats(t: &Trainer) -> BTreeMap<String, (Vec<i64>, f64, f64, f64)> {
    t.vs.variables()
        .into_iter()
        .map(|(name, var)| {
            let w = var.detach().to_kind(Kind::Double);
            let g = var.grad();
            let g = if g.defined() {
                g.to_kind(Kind::Double)
            } else {
                w.zeros_like()
            };
            let norm = g.norm().double_value(&[]);
            let dot = (&g * &w).sum(Kind::Double).double_value(&[]);
            (name, (var.size(), norm, dot, w.norm().double_value(&[])))
        })
        .collect()
}

fn check(case: &str) {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(format!("{case}.golden.json"))).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = Trainer::new(recipe(case, tmp.path())).unwrap();
    let mut bad = Vec::new();

    // The inputs: same ids from the same texts, same prompt.
    let passages: Vec<Vec<u32>> = golden["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(u32s)
        .collect();
    for (text, ids) in golden["texts"].as_array().unwrap().iter().zip(&passages) {
        let ours = t.tokenizer.encode(text.as_str().unwrap()).unwrap();
        assert_eq!(&ours, ids, "tokenization of {text}");
    }
    let lens: Vec<usize> = passages.iter().map(Vec::len).collect();
    assert!(
        lens.windows(2).all(|w| w[0] != w[1]),
        "passages must differ in length to exercise padding: {lens:?}"
    );
    assert_eq!(
        t.prompt().ids,
        u32s(&golden["prompt_ids"]),
        "decoder prompt"
    );
    assert_eq!(
        t.prompt().latent_start as u64,
        golden["latent_start"].as_u64().unwrap()
    );

    // One forward + backward through the trainer's own batching and loss.
    let ps: Vec<&[u32]> = passages.iter().map(Vec::as_slice).collect();
    let b = make_batch(
        &ps,
        t.prompt(),
        t.tokenizer.specials(),
        t.recipe.data.word_dropout,
        &mut SplitMix64::new(t.recipe.seed),
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        b.n_label_tokens as u64,
        golden["n_label_tokens"].as_u64().unwrap()
    );
    let loss = t.loss(&b);
    loss.backward();
    let (ours, theirs) = (loss.double_value(&[]), f64s(&golden["loss"]));
    eprintln!(
        "{case}: loss rust {ours:.9} python {theirs:.9} |diff| {:.2e}",
        (ours - theirs).abs()
    );
    if (ours - theirs).abs() > LOSS_ABS {
        bad.push(format!("loss: rust {ours} python {theirs}"));
    }

    // Every tensor, both ways.
    let rust = grad_stats(&t);
    let py = golden["grads"].as_object().unwrap();
    for name in py.keys().filter(|k| !rust.contains_key(*k)) {
        bad.push(format!(
            "{name}: in the Python model, not a trainer variable"
        ));
    }
    for name in rust.keys().filter(|k| !py.contains_key(*k)) {
        bad.push(format!(
            "{name}: a trainer variable, not in the Python model"
        ));
    }
    let (mut worst_norm, mut worst_dot) = (0.0f64, 0.0f64);
    for (name, (shape, norm, dot, wnorm)) in &rust {
        let Some(g) = py.get(name) else { continue };
        let pshape: Vec<i64> = g["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        if &pshape != shape {
            bad.push(format!("{name}: shape rust {shape:?} python {pshape:?}"));
            continue;
        }
        let (pn, pd) = (f64s(&g["norm"]), f64s(&g["dot_param"]));
        let dn = (norm - pn).abs();
        let dd = (dot - pd).abs();
        let scale = pn * wnorm;
        worst_norm = worst_norm.max(dn / pn.max(GRAD_FLOOR));
        worst_dot = worst_dot.max(dd / scale.max(GRAD_FLOOR));
        if dn > GRAD_REL * pn + GRAD_FLOOR {
            bad.push(format!("{name}: grad norm rust {norm:e} python {pn:e}"));
        }
        if dd > GRAD_REL * scale + GRAD_FLOOR {
            bad.push(format!("{name}: grad.weights rust {dot:e} python {pd:e}"));
        }
        if g["reached"] == Value::Bool(false) && *norm != 0.0 {
            bad.push(format!(
                "{name}: python's loss does not reach it, rust's does"
            ));
        }
    }
    eprintln!(
        "{case}: {} tensors; worst grad-norm rel diff {worst_norm:.2e}, worst grad.weights diff / bound {worst_dot:.2e}",
        rust.len()
    );
    assert!(
        bad.is_empty(),
        "{case}: {} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn tied_embeddings_match_pytorch() {
    check("tied");
}

#[test]
fn untied_embeddings_match_pytorch() {
    check("untied");
}

/// Sanity of the comparison itself: different inputs must not pass.
#[test]
fn a_perturbed_batch_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Trainer::new(recipe("tied", tmp.path())).unwrap();
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tied.golden.json")).unwrap(),
    )
    .unwrap();
    let mut passages: Vec<Vec<u32>> = golden["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(u32s)
        .collect();
    passages[0][0] = passages[0][0].wrapping_add(1);
    let ps: Vec<&[u32]> = passages.iter().map(Vec::as_slice).collect();
    let b = make_batch(
        &ps,
        t.prompt(),
        t.tokenizer.specials(),
        0.0,
        &mut SplitMix64::new(0),
        Device::Cpu,
    )
    .unwrap();
    let d = (t.loss(&b).double_value(&[]) - f64s(&golden["loss"])).abs();
    assert!(d > LOSS_ABS, "a changed token moved the loss by only {d:e}");
}
