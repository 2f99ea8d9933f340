//! Shared helpers for the integration tests: deterministic data, a reference model
//! (y = Softmax(x @ W + b)) and its plain-Rust computation.

#![allow(dead_code)] // each test binary uses a different subset

use c3_onnx::{Dim, ElemType, GraphBuilder, Model, Result, TensorData, Value, le_bytes};

/// Input width, output width of the reference model.
pub const K: usize = 4;
pub const N: usize = 3;

/// Deterministic values in [-1, 1) (a small LCG; no rand dependency needed).
pub fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Weights of the reference model.
pub fn weights() -> (Vec<f32>, Vec<f32>) {
    (data(K * N, 1), data(N, 2))
}

/// y = Softmax(MatMul(x, W) + b) with x: [batch, K]. With `stream_w`, W is a streamed
/// source that converts f64 to f32 on the fly, as the exporter does from a checkpoint.
pub fn softmax_model(stream_w: bool) -> Result<Model> {
    let (w, b) = weights();
    let mut g = GraphBuilder::new("softmax_affine");
    let x = g.input(
        "x",
        ElemType::F32,
        &[Dim::sym("batch"), Dim::Fixed(K as i64)],
    )?;
    let w_data = if stream_w {
        let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        TensorData::stream(move |out: &mut dyn std::io::Write| {
            for v in &w64 {
                out.write_all(&(*v as f32).to_le_bytes())?;
            }
            Ok(())
        })
    } else {
        TensorData::Bytes(le_bytes(&w))
    };
    let y = g.scoped("proj", |g| -> Result<Value> {
        let w = g.initializer(
            &g.key("weight"),
            ElemType::F32,
            &[K as i64, N as i64],
            w_data,
        )?;
        let b = g.initializer_from(&g.key("bias"), &[N as i64], &b)?;
        let xw = g.matmul(&x, &w)?;
        let z = g.add(&xw, &b)?;
        g.node("Softmax", &[&z])
            .attr("axis", -1i64)
            .output_names(&["y"])
            .output()
    })?;
    g.output(
        &y,
        ElemType::F32,
        &[Dim::sym("batch"), Dim::Fixed(N as i64)],
    )?;
    Ok(g.finish())
}

/// The reference model in plain Rust.
pub fn softmax_reference(x: &[f32]) -> Vec<f32> {
    let (w, b) = weights();
    let mut y = Vec::with_capacity(x.len() / K * N);
    for row in x.chunks(K) {
        let z: Vec<f32> = (0..N)
            .map(|j| (0..K).map(|k| row[k] * w[k * N + j]).sum::<f32>() + b[j])
            .collect();
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f32 = e.iter().sum();
        y.extend(e.iter().map(|v| v / s));
    }
    y
}
