//! The deployment path end to end through the `c3` binary: export (every target,
//! verified against the tch reference), the ONNX Runtime cascade equal to the tch
//! one, latent files, and one clear error line for each bad artifact or input.

use std::path::{Path, PathBuf};

mod common;
use common::*;

fn export(ckpt: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["export", s(ckpt), "--out", s(out), "--json"];
    args.extend_from_slice(extra);
    ok(&c3(&args))
}

#[test]
fn every_fp32_target_verifies_against_tch() {
    let tmp = tempfile::tempdir().unwrap();
    for (target, kv, want_kv) in [
        ("ort", "auto", "shared_buffer"),
        ("ort", "concat", "concat"),
        ("tensorrt", "auto", "concat"),
    ] {
        let out = tmp.path().join(format!("{target}-{kv}"));
        let v = export(
            &fixture(),
            &out,
            &["--target", target, "--kv-cache", kv, "--verify"],
        );
        assert_eq!(v["kv_cache"], want_kv, "{v}");
        assert_eq!(v["verify"]["pass"], true, "{v}");
        assert_eq!(
            v["verify"]["greedy_first_difference"],
            serde_json::Value::Null
        );
        assert!(v["verify"]["prefill_logits_max_abs_diff"].as_f64().unwrap() <= 1e-4);
    }
    // A bf16 checkpoint with an untied lm_head (the release-shape layout) exports and
    // verifies too: dtype conversion and the separate head are exercised.
    let ck = tmp.path().join("bf16");
    ok(&c3(&[
        "init",
        "--preset",
        "tiny",
        "--seed",
        "5",
        "--dtype",
        "bf16",
        s(&ck),
    ]));
    let v = export(&ck, &tmp.path().join("bf16-export"), &["--verify"]);
    assert_eq!(v["verify"]["pass"], true, "{v}");
}

#[test]
fn quantized_exports_use_matmulnbits_and_stay_close() {
    let tmp = tempfile::tempdir().unwrap();
    // Defaults (int8: block 128, int8 compute, LM head quantized) and the other
    // choices.
    let variants: [(&str, &[&str], serde_json::Value); 2] = [
        (
            "int8",
            &[],
            serde_json::json!({"block": 128, "compute": "int8", "lm_head": true}),
        ),
        (
            "int4",
            &[
                "--quant-block",
                "64",
                "--quant-compute",
                "fp32",
                "--keep-lm-head",
            ],
            serde_json::json!({"block": 64, "compute": "fp32", "lm_head": false}),
        ),
    ];
    for (q, extra, flags) in variants {
        let out = tmp.path().join(q);
        let mut args = vec!["--quantize", q, "--verify"];
        args.extend(extra);
        let v = export(&fixture(), &out, &args);
        assert_eq!(v["verify"]["pass"], true, "{v}");
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("c3-export.json")).unwrap()).unwrap();
        let ops = m["models"]["decoder"]["op_types"].as_array().unwrap();
        assert!(
            ops.iter().any(|o| o == "com.microsoft:MatMulNBits"),
            "{ops:?}"
        );
        assert_eq!(m["quantize"], q);
        assert_eq!(m["exporter"]["flags"]["quantization"], flags, "{m}");
    }
    let bad = c3(
        &["export", s(&fixture()), "--out", s(&tmp.path().join("b"))]
            .into_iter()
            .chain(["--quantize", "int4", "--quant-block", "48"])
            .collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("`48`: expected 16, 32, 64, 128 or 256"),
        "{err}"
    );
}

#[test]
fn runtime_roundtrip_equals_tch_and_latent_files_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let ex = tmp.path().join("export");
    export(&fixture(), &ex, &[]);
    let doc = tmp.path().join("doc.txt");
    std::fs::write(
        &doc,
        "Short doc, 20 bytes. And a second sentence to decode.",
    )
    .unwrap();
    let ort = ok(&c3(&["roundtrip", "--model", s(&ex), s(&doc), "--json"]));
    let tch = ok(&c3(&[
        "roundtrip",
        "--checkpoint",
        s(&fixture()),
        s(&doc),
        "--json",
    ]));
    assert_eq!(ort["output_ids"], tch["output_ids"]);
    assert_eq!(ort["backend"], "onnxruntime");

    // A document of several windows: same windows and outputs on both back-ends,
    // and through a latent file.
    let win = |backend: &str, model: &Path| {
        ok(&c3(&[
            "roundtrip",
            backend,
            s(model),
            s(&doc),
            "--window",
            "16",
            "--json",
        ]))
    };
    let (w_ort, w_tch) = (win("--model", &ex), win("--checkpoint", &fixture()));
    assert_eq!(w_ort["n_windows"], 4, "53 byte tokens in windows of 16");
    assert_eq!(w_ort["latent_tokens"], 16);
    assert_eq!(w_ort["output_ids"], w_tch["output_ids"]);
    assert_eq!(w_ort["windows"], w_tch["windows"]);
    let wlat = tmp.path().join("windows.latents");
    let args = [
        "compress",
        "--model",
        s(&ex),
        s(&doc),
        "--window",
        "16",
        "-o",
        s(&wlat),
    ];
    ok(&c3(&[&args[..], &["--json"]].concat()));
    let d = ok(&c3(&["decompress", "--model", s(&ex), s(&wlat), "--json"]));
    assert_eq!(d[0]["output_ids"], w_ort["output_ids"]);
    assert_eq!(d[0]["windows"], w_ort["windows"]);

    let lat = tmp.path().join("doc.latents");
    let v = ok(&c3(&[
        "compress",
        "--model",
        s(&ex),
        s(&doc),
        "-o",
        s(&lat),
        "--json",
    ]));
    assert_eq!(v["documents"], 1);
    let d = ok(&c3(&["decompress", "--model", s(&ex), s(&lat), "--json"]));
    assert_eq!(
        d[0]["output_ids"], ort["output_ids"],
        "decompress = roundtrip"
    );

    // Latents from another export (other weights) are refused by name.
    let other_ck = tmp.path().join("other");
    ok(&c3(&[
        "init",
        "--preset",
        "tiny",
        "--seed",
        "1",
        s(&other_ck),
    ]));
    let other = tmp.path().join("other-export");
    export(&other_ck, &other, &[]);
    assert_error(
        &c3(&["decompress", "--model", s(&other), s(&lat)]),
        &["doc.latents", "made by export"],
    );
    // A file that is not a latent file.
    assert_error(
        &c3(&["decompress", "--model", s(&ex), s(&doc)]),
        &["doc.txt", "not a latent file"],
    );
}

/// The shipped default model (issue: runtime == tch on the default model too):
/// its fp32 export verifies against tch, and the ONNX Runtime reconstruction of
/// the README's sample is token-identical to the tch one.
#[test]
fn default_model_runtime_equals_tch() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = root.join("models/c3-tiny");
    let sample = root.join("models/sample.txt");
    assert!(
        model.join("config.json").is_file(),
        "the default model {} is missing",
        model.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let ex = tmp.path().join("export");
    let m = export(&model, &ex, &["--verify"]);
    assert_eq!(m["verify"]["pass"], true, "{m}");
    assert!(m["verify"]["greedy_first_difference"].is_null(), "{m}");
    let ort = ok(&c3(&["roundtrip", "--model", s(&ex), s(&sample), "--json"]));
    let tch = ok(&c3(&[
        "roundtrip",
        "--checkpoint",
        s(&model),
        s(&sample),
        "--json",
    ]));
    assert_eq!(ort["output_ids"], tch["output_ids"]);
    assert!(ort["output_ids"].as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn bad_artifacts_and_inputs_fail_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let ex = tmp.path().join("export");
    export(&fixture(), &ex, &[]);
    let doc = tmp.path().join("doc.txt");
    std::fs::write(&doc, "hello there").unwrap();

    // Missing export folder / manifest.
    assert_error(
        &c3(&["roundtrip", "--model", s(&tmp.path().join("nope")), s(&doc)]),
        &["nope", "c3 export"],
    );
    // Truncated ONNX file: named before ONNX Runtime sees it.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for e in std::fs::read_dir(&ex).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), broken.join(e.file_name())).unwrap();
    }
    let dec = broken.join("decoder.onnx");
    let bytes = std::fs::read(&dec).unwrap();
    std::fs::write(&dec, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(
        &c3(&["roundtrip", "--model", s(&broken), s(&doc)]),
        &["decoder.onnx", "sha256"],
    );
    // A manifest that lies about the I/O contract.
    let lying = tmp.path().join("lying");
    std::fs::rename(&broken, &lying).unwrap();
    std::fs::write(&dec.with_file_name("x"), b"").ok();
    let mpath = lying.join("c3-export.json");
    std::fs::write(lying.join("decoder.onnx"), &bytes).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["layers"] = serde_json::json!(3);
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    assert_error(
        &c3(&["roundtrip", "--model", s(&lying), s(&doc)]),
        &["manifest does not match", "3 layers"],
    );
    // A GPU provider this ONNX Runtime build lacks: an error, no silent CPU run.
    assert_error(
        &c3(&[
            "roundtrip",
            "--model",
            s(&ex),
            "--provider",
            "cuda",
            s(&doc),
        ]),
        &["cuda"],
    );
    // Empty and invalid UTF-8 documents.
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    assert_error(
        &c3(&[
            "compress",
            "--model",
            s(&ex),
            s(&empty),
            "-o",
            s(&tmp.path().join("e.lat")),
        ]),
        &["empty"],
    );
    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, b"ok \xff\xfe").unwrap();
    assert_error(
        &c3(&["roundtrip", "--model", s(&ex), s(&bad)]),
        &["bad.txt", "UTF-8"],
    );
    // A document longer than the encoder is windowed, not refused; a window the
    // encoder cannot take is.
    let long = tmp.path().join("long.txt");
    std::fs::write(&long, "x".repeat(5000)).unwrap();
    let lat = tmp.path().join("l.lat");
    let v = ok(&c3(&[
        "compress",
        "--model",
        s(&ex),
        s(&long),
        "-o",
        s(&lat),
        "--json",
    ]));
    assert!(v["windows"][0].as_u64().unwrap() > 1, "{v}");
    assert_error(
        &c3(&[
            "compress",
            "--model",
            s(&ex),
            s(&long),
            "--window",
            "100000",
            "-o",
            s(&tmp.path().join("l2.lat")),
        ]),
        &["window of 100000", "encoder's limit"],
    );
    // Special-token strings in the text stay text: no error, no injected ids.
    let special = tmp.path().join("special.txt");
    std::fs::write(&special, "<|im_end|><img><imgpad></img>").unwrap();
    ok(&c3(&[
        "roundtrip",
        "--model",
        s(&ex),
        s(&special),
        "--json",
    ]));

    // Exporter: corrupted checkpoint, unwritable target, contradictory flags.
    let ck = tmp.path().join("ck");
    ok(&c3(&["init", "--preset", "tiny", s(&ck)]));
    let st = ck.join("model.safetensors");
    let b = std::fs::read(&st).unwrap();
    std::fs::write(&st, &b[..b.len() - 100]).unwrap();
    assert_error(
        &c3(&["export", s(&ck), "--out", s(&tmp.path().join("x"))]),
        &["model.safetensors"],
    );
    assert_error(
        &c3(&["export", s(&fixture()), "--out", s(tmp.path())]),
        &["not an export folder"],
    );
    // Options that TensorRT graphs cannot carry (contrib ops) are refused up front.
    let (q, fx) = (tmp.path().join("q"), fixture());
    for (opt, value, needles) in [
        ("--quantize", "int4", ["--quantize", "tensorrt"]),
        (
            "--kv-cache",
            "shared-buffer",
            ["--kv-cache shared-buffer", "--target ort"],
        ),
    ] {
        let args = ["export", s(&fx), "--out", s(&q), "--target", "tensorrt"];
        let mut args = args.to_vec();
        args.extend([opt, value]);
        assert_error(&c3(&args), &needles);
    }
    assert!(
        !tmp.path().join("x").exists() && !tmp.path().join("q").exists(),
        "no half-written export left behind"
    );
}

#[test]
fn build_dry_run_checks_exports_and_real_builds_need_a_gpu() {
    let tmp = tempfile::tempdir().unwrap();
    let trt = tmp.path().join("trt");
    export(&fixture(), &trt, &["--target", "tensorrt"]);
    let plans = tmp.path().join("trt-plans");
    let v = ok(&c3(&[
        "build",
        s(&trt),
        "--out",
        s(&plans),
        "--dry-run",
        "--json",
    ]));
    assert!(v.is_object(), "{v}");
    assert!(!plans.exists(), "a dry run writes nothing");
    let q = tmp.path().join("q");
    export(&fixture(), &q, &["--quantize", "int8"]);
    assert_error(
        &c3(&["build", s(&q), "--dry-run"]),
        &["decoder.onnx", "MatMulNBits", "--target tensorrt"],
    );
    // This machine has no NVIDIA GPU: a real build says so (CI without GPU too).
    if std::process::Command::new("nvidia-smi").output().is_err() {
        assert_error(
            &c3(&["build", s(&trt), "--out", s(&plans)]),
            &["no CUDA device"],
        );
        let doc = tmp.path().join("d.txt");
        std::fs::write(&doc, "hello").unwrap();
        assert_error(
            &c3(&[
                "roundtrip",
                "--model",
                s(&trt),
                "--engine",
                s(&plans),
                s(&doc),
            ]),
            &["trt-plans"],
        );
    }
}

/// `c3 bench --json` on the fixture: every figure the runtime issue asks for is
/// there, positive, measured for this runtime and the tch reference in one run.
#[test]
fn bench_reports_runtime_and_reference_in_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("export");
    export(&fixture(), &out, &[]);
    let v = ok(&c3(&[
        "bench",
        "--model",
        s(&out),
        "--docs",
        "2",
        "--new-tokens",
        "4",
        "--repeat",
        "1",
        "--json",
    ]));
    let o = &v["runtime"];
    assert_eq!(o["kv_cache"], "shared_buffer", "{v}");
    for k in [
        "docs_per_second",
        "time_to_first_token_ms",
        "decode_tokens_per_second_b1",
        "decode_tokens_per_second_b8",
        "prefill_ms_with_latents",
        "prefill_ms_with_full_text",
        "peak_rss_mib",
    ] {
        assert!(o[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    // Measured on Linux (the fixture's documents may add nothing past the arena).
    assert!(o["encoder_activations_mib"].as_f64().is_some(), "{v}");
    let steps = o["decode_step_ms_by_position"].as_object().unwrap();
    assert!(steps.contains_key("16") && steps.len() >= 2, "{v}");
    assert!(o["decode_step_growth"]["ratio"].as_f64().unwrap() > 0.0);
    assert!(
        v["reference"]["decode_tokens_per_second_b1"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(v["ratios"]["decode_b1_ort_over_tch"].as_f64().unwrap() > 0.0);
    assert!(
        v["deepseek_ocr_published"]["note"]
            .as_str()
            .unwrap()
            .contains("not measured")
    );
}
