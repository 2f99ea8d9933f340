//! SIGTERM under load, on the real binary: the streams already accepted run to their
//! `done` event, a new connection during the drain is refused (the listener is
//! closed) or answered 503, and the process exits 0 once the last stream has ended.
//! (`/healthz` answering 503 `shutting_down` during a drain is checked in-process:
//! errors.rs.)

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_streams_in_flight_and_exits_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_c3-serve"))
        .args([
            export_dir().to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--max-batch",
            "4",
        ])
        .args(["--window", &WINDOW.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .strip_prefix("c3-serve: listening on http://")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no listening line: {line:?}"))
        .parse()
        .unwrap();
    // Four long streams (tens of windows each), each past its first piece.
    let long =
        "Rows join a running batch at step boundaries and leave it when they end. ".repeat(12);
    let mut streams = Vec::new();
    for _ in 0..4 {
        let body = json!({"text": long, "stream": true});
        let mut s = EventStream::open(addr, "/v1/roundtrip", &body).await;
        assert_eq!(s.status, 200);
        assert_eq!(s.next().await.unwrap().event, "piece");
        streams.push(s);
    }
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    // A newcomer during the drain: refused, or told the server is going away.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
        drop(tcp);
        let body = json!({"text": "late"}).to_string();
        let late = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::spawn(async move { request(addr, "POST", "/v1/roundtrip", body.into()).await }),
        )
        .await;
        if let Ok(Ok((status, _))) = late {
            assert_eq!(status, 503, "a request during the drain");
        }
    }
    // Every accepted stream ends with its summary, after pieces decoded during the
    // drain (the requests were still running when the signal came).
    let mut after = 0;
    for (i, mut s) in streams.into_iter().enumerate() {
        let mut last = String::new();
        while let Some(e) = s.next().await {
            after += usize::from(e.event == "piece");
            last = e.event;
        }
        assert_eq!(last, "done", "stream {i} did not finish");
    }
    assert!(after > 4, "only {after} pieces came after SIGTERM");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no exit after the drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}
