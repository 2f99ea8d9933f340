//! The `c3-export` binary: same arguments as `c3 export`, a JSON summary for
//! pipelines, one error line and a non-zero exit on bad input.

use std::path::PathBuf;
use std::process::Command;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny")
}

#[test]
fn json_summary_lists_the_written_models() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("export");
    let o = Command::new(env!("CARGO_BIN_EXE_c3-export"))
        .args([
            fixture().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--target",
            "tensorrt",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["encoder.onnx", "decoder.onnx", "embed_tokens.onnx"]);
    assert_eq!(v["target"], "tensorrt");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("c3-export.json")).unwrap()).unwrap();
    assert_eq!(
        m["manifest_sha256"],
        serde_json::Value::Null,
        "the hash is of the file, not in it"
    );
    assert_eq!(
        c3_core::manifest::sha256_file(&out.join("c3-export.json")).unwrap(),
        v["manifest_sha256"].as_str().unwrap()
    );
    // TensorRT target: standard ONNX ops only.
    for model in ["encoder", "decoder", "embed_tokens"] {
        for op in m["models"][model]["op_types"].as_array().unwrap() {
            assert!(
                !op.as_str().unwrap().contains(':'),
                "{model} uses non-standard op {op}"
            );
        }
    }
}

#[test]
fn missing_checkpoint_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_c3-export"))
        .args([
            "/nonexistent/ckpt",
            "--out",
            tmp.path().join("x").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("/nonexistent/ckpt"),
        "{err}"
    );
}

#[test]
fn failures_print_one_json_object_and_exit_by_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_c3-export"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = tmp.path().join("x");
    let o = run(&[
        "/nonexistent/ckpt",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "input");
    assert!(
        v["error"].as_str().unwrap().contains("/nonexistent/ckpt"),
        "{v}"
    );
    // A usage error is input (1), not clap's 2, which is the verify code here.
    let o = run(&["--no-such-flag", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "input", "{v}");
    // The reference cannot be found: the environment (3).
    let o = Command::new(env!("CARGO_BIN_EXE_c3-export"))
        .args([fixture().to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--verify", "--json"])
        .env("C3_BIN", tmp.path().join("missing-c3"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "environment");
    assert!(!out.exists());
}
