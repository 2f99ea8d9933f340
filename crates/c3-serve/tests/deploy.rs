//! The deployment contract: no libtorch anywhere in c3-serve's dependency tree, and
//! the binary copied into an empty folder beside `libonnxruntime.so*` runs from there
//! (ONNX Runtime found beside the binary, no environment variable).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_dependency_tree_has_no_libtorch() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "c3-serve",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.lines().any(|l| l.starts_with("c3-runtime ")), "{text}");
    // By crate name: `grep tch` would also count axum's `matchit` and
    // tracing-subscriber's `matchers`.
    let torch: Vec<&str> = text
        .lines()
        .filter(|l| {
            let name = l.split(' ').next().unwrap_or("");
            name == "tch" || name.starts_with("tch-") || name.contains("torch")
        })
        .collect();
    assert!(torch.is_empty(), "{torch:?}");
}

/// `libonnxruntime.so*` from this checkout's `.deps`, as regular files.
fn copy_onnxruntime(to: &Path) {
    let lib = workspace().join(".deps/onnxruntime/lib");
    let mut n = 0;
    for e in std::fs::read_dir(&lib).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("libonnxruntime.so") {
            std::fs::copy(&p, to.join(&name)).unwrap(); // follows the symlink
            n += 1;
        }
    }
    assert!(n > 0, "no libonnxruntime.so* in {}", lib.display());
}

#[test]
fn the_binary_runs_from_another_folder_with_the_library_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("c3-serve");
    std::fs::copy(env!("CARGO_BIN_EXE_c3-serve"), &bin).unwrap();
    copy_onnxruntime(dir.path());
    let export = common::export_dir();
    let mut child = Command::new(&bin)
        .args([
            export.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--max-batch",
            "2",
        ])
        .env_remove("ORT_DYLIB_PATH")
        // The listening line names the arena cap: the flag's default, not the caller's.
        .env_remove("MALLOC_ARENA_MAX")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("no listening line; stderr: {err}");
    }
    let want = format!(
        " (model {}, max batch 2, malloc arenas {}, trim off)\n",
        export.display(),
        c3_serve::malloc::default_arenas()
    );
    assert!(
        line.starts_with("c3-serve: listening on http://127.0.0.1:") && line.ends_with(&want),
        "{line}"
    );
    let addr = line["c3-serve: listening on http://".len()..]
        .split(' ')
        .next()
        .unwrap();
    let (status, body) = http_get(addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    // The library it loaded is the copy beside it, not the checkout's.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id())).unwrap();
    let ort: Vec<&str> = maps
        .lines()
        .filter(|l| l.contains("libonnxruntime.so"))
        .collect();
    assert!(!ort.is_empty(), "{maps}");
    let beside = dir.path().canonicalize().unwrap();
    assert!(
        ort.iter().all(|l| l.contains(beside.to_str().unwrap())),
        "{ort:?} not from {}",
        beside.display()
    );
    // SIGTERM: a graceful exit, code 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::mem::forget(guard);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_bad_export_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_c3-serve"))
        .args([dir.path().to_str().unwrap(), "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("c3-serve: "))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("c3-export.json"), "{err}");
    assert!(out.stdout.is_empty());
}

/// Kills the child if the test fails before it is stopped.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

/// A minimal HTTP/1.0 GET (the response ends when the server closes).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).unwrap().parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}
