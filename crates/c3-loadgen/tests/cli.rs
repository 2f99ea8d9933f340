//! The `c3-loadgen` binary: refused inputs, exit codes, `--json` and the table.

mod common;

use std::process::{Command, Output};

use serde_json::Value;

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_c3-loadgen"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the binary off the async runtime, which keeps serving the fake server.
async fn loadgen_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        loadgen(&args)
    })
    .await
    .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_empty_documents_file_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.txt");
    std::fs::write(&f, "\n \n\n").unwrap();
    // No server is needed: the documents are read first.
    let o = loadgen(&[
        "--url",
        "http://127.0.0.1:1",
        "--documents",
        f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {}: no documents: the file has no text (documents are paragraphs \
             separated by blank lines)",
            f.display()
        )
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn bad_flags_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.txt");
    std::fs::write(&f, "doc").unwrap();
    let f = f.to_str().unwrap();
    for (args, want) in [
        (vec!["--concurrency", "1,0"], "at least 1"),
        (vec!["--concurrency", "4,4"], "lists 4 twice"),
        (vec!["--requests", "0"], "--requests must be at least 1"),
        (vec!["--duration", "0"], "--duration must be positive"),
        (
            vec!["--requests", "2", "--duration", "1"],
            "cannot be used with",
        ),
    ] {
        let mut all = vec!["--documents", f];
        all.extend(&args);
        let o = loadgen(&all);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn an_unreachable_server_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.txt");
    std::fs::write(&f, "doc").unwrap();
    let o = loadgen(&[
        "--url",
        "http://127.0.0.1:1",
        "--documents",
        f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: the server is not ready: http://127.0.0.1:1/healthz: "),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_has_every_level_the_ratios_the_command_and_healthz() {
    let server = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "ttft=30 itl=10 pieces=3 tokens=5").unwrap();
    std::fs::write(dir.path().join("b.txt"), "ttft=60 itl=10 pieces=2 tokens=4").unwrap();
    let args = [
        "--url",
        &server.url,
        "--concurrency",
        "1,2",
        "--documents",
        dir.path().to_str().unwrap(),
        "--requests",
        "4",
        "--max-new-tokens",
        "5",
        "--json",
    ];
    let o = loadgen_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["healthz"]["status"], "ok");
    assert!(v["command"].as_str().unwrap().contains("--concurrency 1,2"));
    assert_eq!(v["documents"], 2);
    assert_eq!(v["requests_per_level"], 4);
    assert_eq!(v["warmup_per_loop"], 1);
    assert_eq!(v["interrupted"], false);
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    for (l, c) in levels.iter().zip([1, 2]) {
        assert_eq!(l["concurrency"], c);
        assert_eq!(l["ok"], 4);
        assert_eq!(l["generated_tokens"], 18);
        for key in ["latency_seconds", "ttft_seconds"] {
            for p in ["p50", "p95", "p99"] {
                assert!(l[key][p].as_f64().unwrap() > 0.0, "{key} {p}");
            }
        }
        assert!(l["itl_seconds"]["p50"].as_f64().unwrap() > 0.0);
        assert!(l["itl_seconds"]["p95"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(v["ratios"]["baseline_concurrency"], 1);
    assert_eq!(v["ratios"]["tokens_per_second"]["1"], 1.0);
    let r = v["ratios"]["tokens_per_second"]["2"].as_f64().unwrap();
    let want = levels[1]["tokens_per_second"].as_f64().unwrap()
        / levels[0]["tokens_per_second"].as_f64().unwrap();
    assert!((r - want).abs() < 1e-9);
    assert!(v["ratios"]["ttft_p50"]["2"].as_f64().unwrap() > 0.0);
    // Warm-up (one per loop) plus four measured requests per level.
    assert_eq!(server.bodies.lock().unwrap().len(), 1 + 4 + 2 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_names_errors_and_a_run_without_success_exits_1() {
    let server = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.txt");
    std::fs::write(&f, "status=429\n\nstatus=500").unwrap();
    let args = [
        "--url",
        &server.url,
        "--concurrency",
        "1",
        "--documents",
        f.to_str().unwrap(),
        "--requests",
        "4",
        "--warmup",
        "0",
    ];
    let o = loadgen_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(o.status.code(), Some(1));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.starts_with(" conc   reqs"), "{table}");
    assert!(
        table.contains("concurrency 1: 2 x http_429 (first: HTTP 429: fake 429)"),
        "{table}"
    );
    assert!(table.contains("concurrency 1: 2 x http_500"), "{table}");
    assert!(stderr(&o).contains("error: no request succeeded"));
}
