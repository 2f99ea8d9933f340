//! The `c3` binary end to end on tiny checkpoints: the JSON contract of
//! `roundtrip`, and one clear error line with a non-zero exit for each bad input.

use std::path::{Path, PathBuf};

mod common;
use common::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn roundtrip_json_has_the_contract_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "t.txt",
        b"The quick brown fox jumps over the lazy dog. 1234567890",
    );
    let out = c3(&[
        "roundtrip",
        "--checkpoint",
        fixture().to_str().unwrap(),
        &f,
        "--max-new-tokens",
        "8",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "text",
        "output_ids",
        "text_tokens",
        "latent_tokens",
        "compression",
        "char_precision",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    // The byte-level fixture: one token per byte, N = 4.
    assert_eq!(v["text_tokens"], 55);
    assert_eq!(v["latent_tokens"], 4);
    assert_eq!(v["compression"], 13.75);
    assert!(v["output_ids"].as_array().unwrap().len() <= 8);
}

#[test]
fn init_then_inspect_reports_the_preset() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    let out = c3(&[
        "init",
        "--preset",
        "tiny",
        "--seed",
        "3",
        "--dtype",
        "bf16",
        ck.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let out = c3(&["inspect", ck.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["latent_tokens"], 4);
    assert_eq!(v["decoder"]["dtypes"]["bf16"], 30);
    assert_eq!(v["decoder"]["tied_lm_head"], false);
}

#[test]
fn bad_inputs_fail_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = fixture();
    let ck = ck.to_str().unwrap();
    let good = write(tmp.path(), "good.txt", b"hello");
    // Missing text file.
    assert_error(
        &c3(&["roundtrip", "--checkpoint", ck, "/no/such.txt"]),
        &["/no/such.txt"],
    );
    // Empty and whitespace-only text.
    let empty = write(tmp.path(), "empty.txt", b" \n\t ");
    assert_error(&c3(&["roundtrip", "--checkpoint", ck, &empty]), &["empty"]);
    // Not UTF-8.
    let bin = write(tmp.path(), "bin.txt", b"ok\xff\xfe");
    assert_error(
        &c3(&["roundtrip", "--checkpoint", ck, &bin]),
        &["bin.txt", "UTF-8", "offset 2"],
    );
    // Longer than the encoder accepts (512 positions - 5 = 507 byte tokens) is
    // windowed, not refused; a window the encoder cannot take is refused.
    let long = write(tmp.path(), "long.txt", "a".repeat(600).as_bytes());
    assert_error(
        &c3(&["roundtrip", "--checkpoint", ck, "--window", "600", &long]),
        &["window of 600", "1..=507"],
    );
    assert_error(
        &c3(&["roundtrip", "--checkpoint", ck, "--window", "0", &long]),
        &["window of 0"],
    );
    // Missing checkpoint.
    assert_error(
        &c3(&["roundtrip", "--checkpoint", "/no/ckpt", &good]),
        &["/no/ckpt"],
    );
    // Corrupt safetensors.
    let bad = tmp.path().join("bad");
    let out = c3(&["init", "--preset", "tiny", bad.to_str().unwrap()]);
    assert!(out.status.success());
    std::fs::write(
        bad.join("llm1/model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}",
    )
    .unwrap();
    assert_error(
        &c3(&["inspect", bad.to_str().unwrap()]),
        &["llm1/model.safetensors", "not a valid safetensors"],
    );
    // Missing config field.
    let cfg = bad.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("latent_token_len");
    std::fs::write(&cfg, v.to_string()).unwrap();
    assert_error(
        &c3(&["inspect", bad.to_str().unwrap()]),
        &["latent_token_len", "config.json"],
    );
    // Text with special-token strings is ordinary text, not an error.
    let sp = write(tmp.path(), "sp.txt", b"<img><imgpad></img><|im_end|>");
    let out = c3(&[
        "roundtrip",
        "--checkpoint",
        ck,
        &sp,
        "--max-new-tokens",
        "2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["text_tokens"], 29);
    // Unknown preset.
    assert_error(
        &c3(&[
            "init",
            "--preset",
            "huge",
            tmp.path().join("x").to_str().unwrap(),
        ]),
        &["huge"],
    );
}

#[test]
fn eval_writes_report_and_resumes_from_its_results() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = write(
        tmp.path(),
        "c.txt",
        "The quick brown fox jumps over the lazy dog. "
            .repeat(20)
            .as_bytes(),
    );
    let out = tmp.path().join("eval");
    let fx = fixture();
    let args = [
        "eval",
        "--checkpoint",
        fx.to_str().unwrap(),
        &corpus,
        "--min-tokens",
        "20",
        "--max-tokens",
        "30",
        "--limit",
        "3",
        "--buckets",
        "0-16:8",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    let first = c3(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["overall"]["passages"], 3);
    assert!(out.join("report.md").is_file() && out.join("report.json").is_file());
    for png in ["precision_vs_compression.png", "error_by_position.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{png}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("DeepSeek-OCR 64 (published)") && md.contains("| all | 3 |"),
        "{md}"
    );
    // A second run finds every passage done and recomputes nothing new.
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(lines(&out.join("results.jsonl")), 3);
    assert!(c3(&args).status.success());
    assert_eq!(lines(&out.join("results.jsonl")), 3);
    // Another model (same shapes, other seed) into the same folder is refused: its
    // results must not be mixed with, or replaced by, the first model's.
    let other = tmp.path().join("other");
    let init = c3(&[
        "init",
        "--preset",
        "tiny",
        "--seed",
        "9",
        other.to_str().unwrap(),
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut again = args;
    again[2] = other.to_str().unwrap();
    let refused = c3(&again);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("another model or passage set"), "{err}");
    assert_eq!(lines(&out.join("results.jsonl")), 3);
}

/// `--device cuda` on this CPU-only machine: one line naming what is missing, for the
/// tch cascade and for training (the GPU hosts run the same binary: docs/gpu.md).
#[test]
fn cuda_device_without_a_gpu_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let good = write(tmp.path(), "good.txt", b"hello");
    let ck = fixture();
    let out = c3(&[
        "roundtrip",
        "--checkpoint",
        s(&ck),
        "--device",
        "cuda",
        &good,
    ]);
    assert_error(&out, &["device `cuda` is not available"]);
    let out = c3(&[
        "roundtrip",
        "--checkpoint",
        s(&ck),
        "--device",
        "gpu",
        &good,
    ]);
    assert_error(&out, &["unknown device `gpu`"]);
    // The CPU still works with the flag given.
    ok(&c3(&[
        "roundtrip",
        "--checkpoint",
        s(&ck),
        "--device",
        "cpu",
        "--max-new-tokens",
        "4",
        &good,
    ]));
    let recipe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/c3-tiny.recipe.toml");
    let out = c3(&[
        "train",
        "--config",
        s(&recipe),
        "--device",
        "cuda",
        "--out",
        s(tmp.path()),
    ]);
    assert_error(&out, &["device `cuda` is not available"]);
}
