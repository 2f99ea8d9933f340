//! A model over protobuf's 2 GiB limit: two streamed tables (one past the 2^31 offset)
//! written as external data and run in ONNX Runtime. Writes ~2.1 GB to a temp dir, so
//! it is ignored by default: `cargo test -p c3-onnx --test large_model -- --ignored`.

#![cfg(feature = "ort")]

use anyhow::{Context, Result};
use c3_onnx::ndarray::Array;
use c3_onnx::ort::value::TensorRef;
use c3_onnx::{Dim, ElemType, GraphBuilder, TensorData, ort_env};

const WIDTH: usize = 256;

/// A [rows, WIDTH] f32 table whose row r is filled with `r + bias`, produced row by row.
fn table(rows: usize, bias: f32) -> TensorData {
    TensorData::stream(move |out: &mut dyn std::io::Write| {
        let mut row = vec![0u8; WIDTH * 4];
        for r in 0..rows {
            let v = (r as f32 + bias).to_le_bytes();
            row.chunks_exact_mut(4).for_each(|c| c.copy_from_slice(&v));
            out.write_all(&row)?;
        }
        Ok(())
    })
}

#[test]
#[ignore = "writes ~2.1 GB"]
fn over_2gib_model_with_external_data() -> Result<()> {
    let rows_a = (2usize << 30) / (WIDTH * 4) + 8; // just over 2 GiB
    let rows_b = 1024;
    let mut g = GraphBuilder::new("large");
    let ids = g.input("ids", ElemType::I64, &[Dim::sym("n")])?;
    let a = g.initializer(
        "a.weight",
        ElemType::F32,
        &[rows_a as i64, WIDTH as i64],
        table(rows_a, 0.0),
    )?;
    let b = g.initializer(
        "b.weight",
        ElemType::F32,
        &[rows_b as i64, WIDTH as i64],
        table(rows_b, 0.5),
    )?;
    let ga = g.gather(&a, &ids, 0)?;
    let idx = g.const_i64s(&[3, 1000])?;
    let gb = g.gather(&b, &idx, 0)?;
    let y = g.add(&ga, &gb)?;
    g.output(
        &y,
        ElemType::F32,
        &[Dim::Fixed(2), Dim::Fixed(WIDTH as i64)],
    )?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("large.onnx");
    let summary = g.finish().write(&path)?;
    assert_eq!(summary.external_tensors, 2);
    assert!(summary.data_bytes > 2 << 30);
    assert!(summary.model_bytes < 4096, "the .onnx holds only the graph");

    let mut session = ort_env::cpu_session(&path)?;
    let ids_arr = Array::from_vec(vec![7i64, rows_a as i64 - 1]);
    let out = session.run(c3_onnx::ort::inputs!["ids" => TensorRef::from_array_view(&ids_arr)?])?;
    let y = out
        .get(y.name())
        .context("no output")?
        .try_extract_array::<f32>()?;
    assert_eq!(y[[0, 0]], 7.0 + 3.5);
    assert_eq!(y[[1, WIDTH - 1]], (rows_a - 1) as f32 + 1000.5);
    Ok(())
}
