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
