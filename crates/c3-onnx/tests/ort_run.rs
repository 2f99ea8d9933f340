//! Models built here run in ONNX Runtime (loaded with `ort`, load-dynamic) and match
//! the same computation in plain Rust.

#![cfg(feature = "ort")]

mod common;

use std::path::Path;

use anyhow::{Context, Result};
use c3_onnx::ndarray::{Array, ArrayD};
use c3_onnx::ort::value::TensorRef;
use c3_onnx::{Dim, ElemType, GraphBuilder, WriteOptions, load_model, ort_env};
use common::{K, N, max_abs_diff};

/// Runs the reference model at `path` on `batch` rows and checks it against Rust.
fn check_softmax_model(path: &Path, batch: usize) -> Result<()> {
    let x_vals = common::data(batch * K, 7 + batch as u64);
    let x = Array::from_shape_vec((batch, K), x_vals.clone())?;
    let mut session = ort_env::cpu_session(path)?;
    let outputs = session.run(c3_onnx::ort::inputs!["x" => TensorRef::from_array_view(&x)?])?;
    let y = outputs
        .get("y")
        .context("no output y")?
        .try_extract_array::<f32>()?;
    assert_eq!(y.shape(), &[batch, N]);
    let got: Vec<f32> = y.iter().copied().collect();
    let diff = max_abs_diff(&got, &common::softmax_reference(&x_vals));
    assert!(diff <= 1e-6, "max abs diff {diff}");
    Ok(())
}

#[test]
fn softmax_affine_matches_rust() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.onnx");
    common::softmax_model(false)?.write(&path)?;
    for batch in [1, 5] {
        check_softmax_model(&path, batch)?;
    }
    Ok(())
}

#[test]
fn streamed_external_data_matches_rust() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.onnx");
    let opts = WriteOptions {
        external_threshold: 0,
        min_external_bytes: 0,
        ..Default::default()
    };
    let summary = common::softmax_model(true)?.write_with(&path, &opts)?;
    assert_eq!(summary.external_tensors, 2);
    assert!(dir.path().join("m.onnx.data").exists());
    check_softmax_model(&path, 3)
}

#[test]
fn missing_library_error_names_path_and_fix() {
    // Only the message is checked: the process-wide environment may already exist.
    let err = c3_onnx::Error::OrtLibraryMissing {
        tried: "ORT_DYLIB_PATH /nowhere/libonnxruntime.so".into(),
    };
    let msg = err.to_string();
    assert!(
        msg.contains("/nowhere/libonnxruntime.so") && msg.contains("scripts/install-deps.sh"),
        "{msg}"
    );
}

/// Builds a graph using most op helpers (RMSNorm, embedding, a causal mask built from
/// shapes, trig, layout ops, Gemm) and compares every output with plain Rust.
#[test]
fn op_helpers_run_in_onnx_runtime() -> Result<()> {
    const SEQ: usize = 3;
    const H: usize = 4;
    const VOCAB: usize = 5;
    let eps = 1e-5f32;
    let x_vals = common::data(SEQ * H, 11);
    let ids_vals = [4i64, 0, 2];
    let norm_w = common::data(H, 12);
    let emb = common::data(VOCAB * H, 13);
    let gemm_w = common::data(2 * H, 14); // [2, H], used transposed
    let gemm_b = [0.5f32, -0.25];

    let mut g = GraphBuilder::new("ops");
    let x = g.input("x", ElemType::F32, &[Dim::sym("seq"), Dim::Fixed(H as i64)])?;
    let ids = g.input("ids", ElemType::I64, &[Dim::sym("seq")])?;
    let seq = [Dim::sym("seq")];
    let seq_h = [Dim::sym("seq"), Dim::Fixed(H as i64)];

    // RMSNorm: x * 1/sqrt(mean(x^2) + eps) * w
    let rms = g.scoped("model.norm", |g| -> c3_onnx::Result<c3_onnx::Value> {
        let w = g.initializer_from(&g.key("weight"), &[H as i64], &norm_w)?;
        let two = g.scalar(2.0f32)?;
        let sq = g.pow(&x, &two)?;
        let mean = g.reduce_mean(&sq, &[-1], true)?;
        let e = g.scalar_as(ElemType::F32, f64::from(eps))?;
        let var = g.add(&mean, &e)?;
        let std = g.sqrt(&var)?;
        let inv = g.reciprocal(&std)?;
        let xn = g.mul(&x, &inv)?;
        g.mul(&xn, &w)
    })?;
    g.output(&rms, ElemType::F32, &seq_h)?;

    let table = g.initializer_from("model.embed_tokens.weight", &[VOCAB as i64, H as i64], &emb)?;
    let embedded = g.scoped("model.embed_tokens", |g| g.gather(&table, &ids, 0))?;
    g.output(&embedded, ElemType::F32, &seq_h)?;

    // sin(x) * cos(x) - (-x) / 2, clamped to [-0.3, 0.3] with Max/Min, then sigmoid.
    let trig = {
        let s = g.sin(&x)?;
        let c = g.cos(&x)?;
        let sc = g.mul(&s, &c)?;
        let nx = g.neg(&x)?;
        let two = g.scalar(2.0f32)?;
        let h = g.div(&nx, &two)?;
        let d = g.sub(&sc, &h)?;
        let lo = g.scalar(-0.3f32)?;
        let hi = g.scalar(0.3f32)?;
        let d = g.max(&d, &lo)?;
        let d = g.min(&d, &hi)?;
        g.sigmoid(&d)?
    };
    g.output(&trig, ElemType::F32, &seq_h)?;

    // Causal mask from the runtime length: 0 on and below the diagonal, -1e4 above.
    let mask = g.scoped("mask", |g| -> c3_onnx::Result<c3_onnx::Value> {
        let shape = g.shape_of(&x)?;
        let zero_idx = g.const_i64(0)?;
        let len = g.gather(&shape, &zero_idx, 0)?;
        let start = g.const_i64(0)?;
        let step = g.const_i64(1)?;
        let pos = g.range(&start, &len, &step)?;
        let rows = g.unsqueeze(&pos, &[1])?;
        let cols = g.unsqueeze(&pos, &[0])?;
        let future = g.less(&rows, &cols)?;
        let len1 = g.unsqueeze(&len, &[0])?;
        let square = g.concat(&[&len1, &len1], 0)?;
        let ones = g.constant_of_shape(&square, ElemType::F32, 1.0)?;
        let lower = g.trilu(&ones, None, false)?;
        let neg = g.scalar(-1e4f32)?;
        let zero = g.scalar(0.0f32)?;
        let same = g.equal(&rows, &cols)?;
        let diag = g.where_(&same, &zero, &lower)?; // lower-triangular ones minus the diagonal
        let m = g.where_(&future, &neg, &zero)?;
        g.sub(&m, &diag)
    })?;
    g.output(&mask, ElemType::F32, &[Dim::sym("seq"), Dim::sym("seq")])?;

    // Cast + CumSum of the ids.
    let ids_f = g.cast(&ids, ElemType::F32)?;
    let csum = g.cumsum(&ids_f, 0)?;
    g.output(&csum, ElemType::F32, &seq)?;

    // Layout ops: transpose, flatten, concat, slice, unsqueeze, expand, squeeze.
    let layout = {
        let t = g.transpose(&x, &[1, 0])?;
        let flat_shape = g.const_i64s(&[-1])?;
        let flat = g.reshape(&t, &flat_shape)?;
        let both = g.concat(&[&flat, &flat], 0)?;
        let (s, e, st) = (
            g.const_i64s(&[1])?,
            g.const_i64s(&[9])?,
            g.const_i64s(&[2])?,
        );
        let picked = g.slice(&both, &s, &e, None, Some(&st))?; // elements 1,3,5,7
        let row = g.unsqueeze(&picked, &[0])?;
        let target = g.const_i64s(&[2, H as i64])?;
        let rows = g.expand(&row, &target)?;
        let first = g
            .node("Split", &[&rows])
            .attr("axis", 0i64)
            .attr("num_outputs", 2i64)
            .outputs(2)?;
        g.squeeze(&first[0], &[0])?
    };
    g.output(&layout, ElemType::F32, &[Dim::Fixed(H as i64)])?;

    // Linear layer as Gemm with a torch-layout weight, then softmax.
    let gw = g.initializer_from("lm_head.weight", &[2, H as i64], &gemm_w)?;
    let gb = g.initializer_from("lm_head.bias", &[2], &gemm_b)?;
    let logits = g.scoped("lm_head", |g| g.gemm(&x, &gw, Some(&gb), true))?;
    let probs = g.softmax(&logits, 1)?;
    g.output(&probs, ElemType::F32, &[Dim::sym("seq"), Dim::Fixed(2)])?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ops.onnx");
    g.finish().write(&path)?;
    let used = c3_onnx::op_types(&load_model(&path)?);
    assert!(used.len() >= 30, "{used:?}");

    let x_arr = Array::from_shape_vec((SEQ, H), x_vals.clone())?;
    let ids_arr = Array::from_shape_vec(SEQ, ids_vals.to_vec())?;
    let mut session = ort_env::cpu_session(&path)?;
    let out = session.run(c3_onnx::ort::inputs![
        "x" => TensorRef::from_array_view(&x_arr)?,
        "ids" => TensorRef::from_array_view(&ids_arr)?,
    ])?;
    let fetch = |name: &str| -> Result<ArrayD<f32>> {
        Ok(out
            .get(name)
            .with_context(|| format!("no output {name}"))?
            .try_extract_array::<f32>()?
            .to_owned())
    };
    let check = |name: &str, want: Vec<f32>, shape: &[usize]| -> Result<()> {
        let got = fetch(name)?;
        assert_eq!(got.shape(), shape, "{name}");
        let diff = max_abs_diff(got.as_slice().context("contiguous")?, &want);
        assert!(diff <= 1e-6, "{name}: max abs diff {diff}");
        Ok(())
    };

    let mut want = Vec::new();
    for row in x_vals.chunks(H) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / H as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        want.extend(row.iter().zip(&norm_w).map(|(v, w)| v * inv * w));
    }
    check(rms.name(), want, &[SEQ, H])?;

    let want: Vec<f32> = ids_vals
        .iter()
        .flat_map(|&i| emb[i as usize * H..][..H].to_vec())
        .collect();
    check(embedded.name(), want, &[SEQ, H])?;

    let want: Vec<f32> = x_vals
        .iter()
        .map(|&v| {
            let d = (v.sin() * v.cos() - (-v) / 2.0).clamp(-0.3, 0.3);
            1.0 / (1.0 + (-d).exp())
        })
        .collect();
    check(trig.name(), want, &[SEQ, H])?;

    let want: Vec<f32> = (0..SEQ * SEQ)
        .map(|k| match (k / SEQ, k % SEQ) {
            (r, c) if r < c => -1e4,
            (r, c) if r == c => 0.0,
            _ => -1.0,
        })
        .collect();
    check(mask.name(), want, &[SEQ, SEQ])?;

    check(csum.name(), vec![4.0, 4.0, 6.0], &[SEQ])?;

    // x^T flattened is column-major x; doubled, elements 1,3,5,7 of it.
    let xt: Vec<f32> = (0..H)
        .flat_map(|c| (0..SEQ).map(move |r| (r, c)))
        .map(|(r, c)| x_vals[r * H + c])
        .collect();
    let both: Vec<f32> = xt.iter().chain(&xt).copied().collect();
    check(
        layout.name(),
        vec![both[1], both[3], both[5], both[7]],
        &[H],
    )?;

    let mut want = Vec::new();
    for row in x_vals.chunks(H) {
        let z: Vec<f32> = (0..2)
            .map(|j| (0..H).map(|k| row[k] * gemm_w[j * H + k]).sum::<f32>() + gemm_b[j])
            .collect();
        let m = z[0].max(z[1]);
        let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
        want.extend(e.iter().map(|v| v / (e[0] + e[1])));
    }
    check(probs.name(), want, &[SEQ, 2])?;
    Ok(())
}
