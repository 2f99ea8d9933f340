//! Writing and reading models without ONNX Runtime: external data layout, atomic
//! writes, truncated files.

mod common;

use c3_onnx::proto::tensor_proto::DataLocation;
use c3_onnx::{Dim, ElemType, Error, GraphBuilder, TensorData, WriteOptions, load_model, op_types};

fn tiny_threshold() -> WriteOptions {
    WriteOptions {
        external_threshold: 0,
        min_external_bytes: 16,
        ..Default::default()
    }
}

#[test]
fn inline_model_round_trips() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.onnx");
    let summary = common::softmax_model(false)?.write(&path)?;
    assert_eq!(
        (
            summary.external_tensors,
            summary.inline_tensors,
            summary.data_path
        ),
        (0, 2, None)
    );
    let m = load_model(&path)?;
    assert_eq!(m.ir_version, Some(c3_onnx::IR_VERSION));
    assert_eq!(m.opset_import.len(), 1, "no contrib domain unless used");
    assert_eq!(m.opset_import[0].version, Some(c3_onnx::DEFAULT_OPSET));
    let g = m.graph.as_ref().expect("graph");
    let names: Vec<_> = g.node.iter().filter_map(|n| n.name.as_deref()).collect();
    assert_eq!(names, ["proj/MatMul", "proj/Add", "proj/Softmax"]);
    assert_eq!(g.initializer[0].name.as_deref(), Some("proj.weight"));
    let ops: Vec<_> = op_types(&m).into_iter().map(|(_, op)| op).collect();
    assert_eq!(ops, ["Add", "MatMul", "Softmax"]);
    Ok(())
}

#[test]
fn external_data_is_aligned_and_referenced() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.onnx");
    let mut g = GraphBuilder::new("ext");
    let x = g.input("x", ElemType::F32, &[Dim::Fixed(8)])?;
    let a = g.initializer_from("a", &[8], &[1.0f32; 8])?;
    let b = g.initializer_from("b", &[8], &[2.0f32; 8])?;
    let small = g.initializer_from("small", &[2], &[3.0f32; 2])?;
    let y = g.add(&x, &a)?;
    let y = g.add(&y, &b)?;
    let y = g.add(&y, &small)?;
    g.output(&y, ElemType::F32, &[Dim::Fixed(8)])?;
    let summary = g.finish().write_with(&path, &tiny_threshold())?;
    assert_eq!((summary.external_tensors, summary.inline_tensors), (2, 1));
    let data_path = dir.path().join("m.onnx.data");
    assert_eq!(summary.data_path.as_deref(), Some(data_path.as_path()));
    assert_eq!(std::fs::metadata(&data_path)?.len(), 4096 + 32);

    let m = load_model(&path)?;
    let inits = &m.graph.as_ref().expect("graph").initializer;
    let entry = |i: usize, k: &str| {
        inits[i]
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(k))
            .and_then(|e| e.value.clone())
    };
    assert_eq!(inits[0].data_location, Some(DataLocation::External as i32));
    assert_eq!(inits[0].raw_data, None);
    assert_eq!(entry(0, "location").as_deref(), Some("m.onnx.data"));
    assert_eq!(
        (entry(0, "offset").as_deref(), entry(0, "length").as_deref()),
        (Some("0"), Some("32"))
    );
    assert_eq!(
        (entry(1, "offset").as_deref(), entry(1, "length").as_deref()),
        (Some("4096"), Some("32"))
    );
    assert_eq!(inits[2].data_location, None, "small tensors stay inline");
    let bytes = std::fs::read(&data_path)?;
    assert_eq!(&bytes[4096..4100], &2.0f32.to_le_bytes());

    // Rewriting with everything inline removes the now-unreferenced data file.
    common::softmax_model(false)?.write(&path)?;
    assert!(!data_path.exists());
    Ok(())
}

#[test]
fn failed_write_leaves_no_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.onnx");
    let mut g = GraphBuilder::new("fail");
    let x = g.input("x", ElemType::F32, &[Dim::Fixed(8)])?;
    let broken = TensorData::stream(|_: &mut dyn std::io::Write| {
        Err(std::io::Error::other("checkpoint vanished"))
    });
    let w = g.initializer("layers.0.weight", ElemType::F32, &[8], broken)?;
    let y = g.add(&x, &w)?;
    g.output(&y, ElemType::F32, &[Dim::Fixed(8)])?;
    let err = g.finish().write_with(&path, &tiny_threshold()).unwrap_err();
    assert!(matches!(err, Error::InitializerSource { .. }), "{err}");
    assert!(err.to_string().contains("layers.0.weight"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path())?.count(),
        0,
        "no final or temporary file left"
    );
    Ok(())
}

#[test]
fn short_stream_is_rejected_inline_and_external() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for opts in [WriteOptions::default(), tiny_threshold()] {
        let mut g = GraphBuilder::new("short");
        let short = TensorData::stream(|out: &mut dyn std::io::Write| out.write_all(&[0u8; 20]));
        g.initializer("w", ElemType::F32, &[8], short)?;
        let err = g
            .finish()
            .write_with(dir.path().join("m.onnx"), &opts)
            .unwrap_err();
        assert!(
            err.to_string().contains("tensor `w`: 20 bytes given"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn truncated_file_gives_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.onnx");
    common::softmax_model(false)?.write(&path)?;
    let bytes = std::fs::read(&path)?;
    let cut = dir.path().join("cut.onnx");
    for len in [bytes.len() / 2, bytes.len() - 1, 0] {
        std::fs::write(&cut, &bytes[..len])?;
        let err = load_model(&cut).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("cut.onnx") && msg.contains("truncated or corrupt"),
            "{len}: {msg}"
        );
    }
    let err = load_model(dir.path().join("missing.onnx")).unwrap_err();
    assert!(err.to_string().contains("missing.onnx"), "{err}");
    Ok(())
}
