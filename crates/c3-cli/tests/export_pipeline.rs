//! `c3 export` as a release-pipeline step (issue 17), through the built binary:
//! byte-identical output, nothing at `--out` after any failure, exit codes by kind
//! (1 input, 2 verify, 3 environment) with one JSON object under `--json`, the
//! checkpoint health check, and `--force`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::*;

/// stdout is exactly one JSON object, with this `kind`.
fn json_error(out: &Output, kind: &str) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: stdout {text:?}"));
    assert_eq!(v["kind"], kind, "{v}");
    assert!(!v["error"].as_str().unwrap().contains('\n'), "{v}");
    v
}

/// Copies the fixture checkpoint to `dir`.
fn copy_fixture(dir: &Path) {
    for sub in ["", "llm1"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(fixture().join(sub)).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
}

/// Overwrites element `index` of the f32 tensor `name` in a safetensors file.
fn poke_f32(file: &Path, name: &str, index: usize, value: f32) {
    let mut b = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let t = &header[name];
    assert_eq!(t["dtype"], "F32", "{name}");
    let start = 8 + n + t["data_offsets"][0].as_u64().unwrap() as usize + 4 * index;
    b[start..start + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(file, b).unwrap();
}

/// sha256 of every file under `dir` by relative name, `provenance.json` aside (the
/// one file documented to differ between runs).
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "provenance.json" {
            m.insert(name, c3_core::manifest::sha256_file(&e.path()).unwrap());
        }
    }
    m
}

/// Names in `dir`, sorted (to see staging folders left behind).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn exporting_twice_gives_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    // The same checkpoint at two absolute paths (two machines), exported twice each.
    let (a, b) = (tmp.path().join("a/tiny"), tmp.path().join("b/tiny"));
    copy_fixture(&a);
    copy_fixture(&b);
    for flags in [&[][..], &["--dtype", "fp16", "--target", "tensorrt"][..]] {
        let mut runs = Vec::new();
        for (i, ck) in [&a, &b, &a].into_iter().enumerate() {
            let out = tmp.path().join(format!("out{i}"));
            let mut args = vec!["export", s(ck), "--out", s(&out), "--json", "--force"];
            args.extend_from_slice(flags);
            ok(&c3(&args));
            runs.push(hashes(&out));
            let manifest = std::fs::read_to_string(out.join("c3-export.json")).unwrap();
            assert!(
                !manifest.contains(s(tmp.path())),
                "absolute path in manifest"
            );
            let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
            assert_eq!(m["source"]["checkpoint"], "tiny");
            assert_eq!(m["exporter"]["c3_version"], env!("CARGO_PKG_VERSION"));
            assert_eq!(m["exporter"]["flags"]["kv_cache"], "auto");
            assert!(out.join("provenance.json").is_file());
        }
        assert!(runs[0].len() >= 5, "{:?}", runs[0]);
        assert_eq!(runs[0], runs[1], "{flags:?}: differs between paths");
        assert_eq!(runs[0], runs[2], "{flags:?}: differs between runs");
    }
}

#[test]
fn an_interrupted_export_leaves_nothing_at_out() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ex");
    // A failure after the encoder is written: the staging folder goes with it.
    let o = c3_cmd(&["export", s(&fixture()), "--out", s(&out), "--json"])
        .env("C3_EXPORT_FAULT", "fail-after-encoder")
        .output()
        .unwrap();
    assert_fails(&o, 1, &["injected failure after encoder"]);
    json_error(&o, "input");
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));

    // A kill at the same point (abort: no cleanup runs) leaves only the staging
    // folder, which is recognisable and removed by the next run.
    let o = c3_cmd(&["export", s(&fixture()), "--out", s(&out)])
        .env("C3_EXPORT_FAULT", "abort-after-encoder")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!out.exists(), "a killed export left {}", out.display());
    let left = names(tmp.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".ex.c3-partial-"), "{left:?}");
    ok(&c3(&["export", s(&fixture()), "--out", s(&out), "--json"]));
    assert_eq!(
        names(tmp.path()),
        ["ex"],
        "stale staging folder not cleaned"
    );
}

/// A `c3` stand-in for `c3 reference` that answers for another checkpoint: the
/// export is fine, the reference is not, so verification must fail.
fn wrong_reference(tmp: &Path) -> PathBuf {
    let other = tmp.join("other-ck");
    copy_fixture(&other);
    for i in 0..16 {
        poke_f32(&other.join("model.safetensors"), "model.Q.weight", i, 3.0);
    }
    let script = tmp.join("fake-c3");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nshift 3\nexec '{}' reference --checkpoint '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_c3"),
            s(&other)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_failed_verify_leaves_nothing_at_out_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = wrong_reference(tmp.path());
    let (out, fx) = (tmp.path().join("ex"), fixture());
    let run = |extra: &[&str]| {
        let mut args = vec!["export", s(&fx), "--out", s(&out), "--verify", "--json"];
        args.extend_from_slice(extra);
        c3_cmd(&args).env("C3_BIN", &fake).output().unwrap()
    };
    let o = run(&[]);
    assert_fails(&o, 2, &["verification failed", "latents max |ort - tch|"]);
    let v = json_error(&o, "verify");
    for k in [
        "latents_max_abs_diff",
        "latents_tolerance",
        "prefill_logits_max_abs_diff",
        "logits_tolerance",
        "greedy_tokens",
        "greedy_first_difference",
    ] {
        assert!(v["verify"].get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["verify"]["pass"], false);
    assert!(!out.exists());
    assert!(
        names(tmp.path()).iter().all(|n| !n.contains("c3-partial")),
        "{:?}",
        names(tmp.path())
    );

    // Over an existing export, with --force: the old export survives untouched.
    ok(&c3(&["export", s(&fixture()), "--out", s(&out)]));
    let before = hashes(&out);
    let o = run(&["--force"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(hashes(&out), before);

    // No reference binary at all: the environment, not the export, is at fault.
    let o = c3_cmd(&[
        "export",
        s(&fixture()),
        "--out",
        s(&tmp.path().join("ex2")),
        "--verify",
        "--json",
    ])
    .env("C3_BIN", tmp.path().join("no-such-c3"))
    .output()
    .unwrap();
    assert_fails(&o, 3, &["no-such-c3"]);
    json_error(&o, "environment");
    assert!(!tmp.path().join("ex2").exists());
}

#[test]
fn a_nan_weight_is_refused_with_its_tensor_named() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("nan-ck");
    copy_fixture(&ck);
    let name = "model.layers.0.mlp.down_proj.weight";
    poke_f32(&ck.join("model.safetensors"), name, 7, f32::NAN);
    let out = tmp.path().join("ex");
    let line = assert_fails(
        &c3(&["export", s(&ck), "--out", s(&out)]),
        1,
        &[name, "1 NaN", "--allow-nonfinite"],
    );
    assert!(line.contains("1 of 56 tensors"), "{line}");
    let o = c3(&["export", s(&ck), "--out", s(&out), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json_error(&o, "input");
    assert!(v["error"].as_str().unwrap().contains(name), "{v}");
    assert!(!out.exists());
    assert_fails(&c3(&["inspect", s(&ck), "--check"]), 1, &[name, "1 NaN"]);
    ok(&c3(&["inspect", s(&ck), "--json"]));
    let v = ok(&c3(&["inspect", s(&fixture()), "--check", "--json"]));
    assert_eq!(v["check"]["bad"], serde_json::json!([]), "{v}");

    // Forensics: exported as is, said loudly, and recorded in the manifest.
    let o = c3(&[
        "export",
        s(&ck),
        "--out",
        s(&out),
        "--allow-nonfinite",
        "--json",
    ]);
    let v = ok(&o);
    assert_eq!(v["health"]["bad"][0]["name"], name, "{v}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: exported with --allow-nonfinite")
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("c3-export.json")).unwrap()).unwrap();
    assert_eq!(m["exporter"]["flags"]["allow_nonfinite"], true);
}

#[test]
fn weights_beyond_fp16_are_refused_for_fp16_only() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("big-ck");
    copy_fixture(&ck);
    poke_f32(
        &ck.join("llm1/model.safetensors"),
        "model.embed_tokens.weight",
        3,
        1.0e5,
    );
    let line = assert_fails(
        &c3(&[
            "export",
            s(&ck),
            "--out",
            s(&tmp.path().join("h")),
            "--dtype",
            "fp16",
        ]),
        1,
        &["`llm1/model.embed_tokens.weight`", "beyond fp16's range"],
    );
    assert!(line.contains("1 beyond"), "{line}");
    assert_fails(
        &c3(&["inspect", s(&ck), "--check", "--dtype", "fp16"]),
        1,
        &["llm1/model.embed_tokens.weight"],
    );
    // fp32 and bf16 carry 1e5.
    ok(&c3(&[
        "export",
        s(&ck),
        "--out",
        s(&tmp.path().join("f")),
        "--json",
    ]));
    ok(&c3(&["inspect", s(&ck), "--check", "--dtype", "bf16"]));
    assert!(!tmp.path().join("h").exists());
}

#[test]
fn force_replaces_and_its_absence_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ex");
    ok(&c3(&["export", s(&fixture()), "--out", s(&out), "--json"]));
    let before = hashes(&out);
    let o = c3(&["export", s(&fixture()), "--out", s(&out), "--json"]);
    assert_fails(&o, 1, &[s(&out), "--force"]);
    json_error(&o, "input");
    let v = ok(&c3(&[
        "export",
        s(&fixture()),
        "--out",
        s(&out),
        "--force",
        "--dtype",
        "fp16",
        "--json",
    ]));
    assert_eq!(v["dtype"], "fp16");
    assert_ne!(hashes(&out), before, "not replaced");
    assert_eq!(names(tmp.path()), ["ex"]);
    // A folder that is not an export is never replaced, --force or not.
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("keep.txt"), "x").unwrap();
    assert_fails(
        &c3(&["export", s(&fixture()), "--out", s(&data), "--force"]),
        1,
        &["not an export folder"],
    );
    assert!(data.join("keep.txt").is_file());

    // Latent files: the same rule.
    let doc = tmp.path().join("doc.txt");
    std::fs::write(&doc, "hello there").unwrap();
    let lat = tmp.path().join("doc.latents");
    ok(&c3(&[
        "compress",
        "--model",
        s(&out),
        s(&doc),
        "-o",
        s(&lat),
    ]));
    assert_fails(
        &c3(&["compress", "--model", s(&out), s(&doc), "-o", s(&lat)]),
        1,
        &["doc.latents", "--force"],
    );
    ok(&c3(&[
        "compress",
        "--model",
        s(&out),
        s(&doc),
        "-o",
        s(&lat),
        "--force",
    ]));
}

#[test]
fn usage_errors_exit_1_with_one_json_object() {
    let o = c3(&["export", s(&fixture()), "--bogus", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "clap's own 2 would read as verify"
    );
    let v = json_error(&o, "input");
    assert!(v["error"].as_str().unwrap().contains("--bogus"), "{v}");
    let o = c3(&["export", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--allow-nonfinite"));
}
