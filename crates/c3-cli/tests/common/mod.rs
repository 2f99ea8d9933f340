//! Helpers shared by the `c3` binary's integration tests: run it, find the tiny
//! fixture, and check the one-line error contract.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn c3_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_c3"));
    c.args(args);
    c
}

pub fn c3(args: &[&str]) -> Output {
    c3_cmd(args).output().unwrap()
}

pub fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny")
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts success and returns stdout as JSON (Null when it is not JSON).
pub fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// The `error:` line of a failed run, after checking it is the only line on
/// stderr besides warnings and progress lines, and that it holds every needle.
fn error_line(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with("warning")
                && !l.starts_with("c3-export: ")
                && !l.starts_with("c3 build: ")
        })
        .collect();
    assert_eq!(lines.len(), 1, "not one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` not in: {err}");
    }
    lines[0].to_string()
}

/// Asserts failure (any non-zero exit) with a single `error:` line holding every needle.
pub fn assert_error(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    error_line(out, needles);
}

/// Asserts exit `code` and a single `error:` line holding every needle; returns it.
pub fn assert_fails(out: &Output, code: i32, needles: &[&str]) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    error_line(out, needles)
}

/// Names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A tiny `c3 train` recipe: 24 steps of a 1-layer model, a checkpoint every 2.
pub fn tiny_recipe(dir: &Path) -> std::path::PathBuf {
    tiny_recipe_steps(dir, 24)
}

/// [`tiny_recipe`] with `total` steps (the same run folder: a longer recipe resumes).
pub fn tiny_recipe_steps(dir: &Path, total: u32) -> std::path::PathBuf {
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let text: Vec<String> = (0..60)
        .map(|i| format!("{} {} {}.", words[i % 6], words[(i * 5 + 1) % 6], i))
        .collect();
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, text.join(" ")).unwrap();
    let toml = format!(
        r#"
name = "t"
threads = 1
out_dir = "{out}"
[data]
paths = ["{corpus}"]
min_tokens = 12
max_tokens = 16
held_out = 2
[model]
tokenizer = "{tok}"
latent_tokens = 2
[model.encoder]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
max_position_embeddings = 128
[model.decoder]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
max_position_embeddings = 256
[optim]
lr = 1e-2
batch_size = 4
[schedule]
total_steps = {total}
warmup_steps = 2
eval_every = 0
save_every = 2
keep_last = 2
log_every = 1
"#,
        out = dir.join("run").display(),
        corpus = corpus.display(),
        tok = fixture().join("tokenizer.json").display(),
        total = total,
    );
    let p = dir.join("recipe.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

/// Every checkpoint a run folder lists is complete: it loads.
pub fn checkpoints_load(run: &Path) -> usize {
    let mut n = 0;
    for name in names(run).iter().filter(|n| n.starts_with("checkpoint-")) {
        ok(&c3(&["inspect", s(&run.join(name))]));
        n += 1;
    }
    n
}
