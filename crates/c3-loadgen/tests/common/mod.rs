//! A fake C3 service on loopback (raw HTTP/1.1 over a tokio `TcpListener`, keep-alive,
//! chunked SSE) whose answers the test documents script:
//!
//! - `status=429` / `status=500`: that status with `{"error": ...}`;
//! - `stream_error` / `stream_timeout`: one piece, then `event: error` (the
//!   second with `"status": 504`, as c3-serve sends past its request timeout);
//! - `truncate`: one piece, then the stream ends without `done`;
//! - otherwise `ttft=MS pieces=N itl=MS tokens=T` (defaults 20, 3, 20, N): waits
//!   `ttft` before the first piece and `itl` between pieces, then `done` with `T`
//!   output ids and the pieces joined as `text`.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct FakeServer {
    pub url: String,
    /// Bodies of every `POST /v1/roundtrip` received, in order.
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

/// Starts the server on a free port of 127.0.0.1 (it lives as long as the runtime).
pub async fn start() -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                // A client hanging up mid-answer is fine.
                let _ = serve_connection(sock, seen).await;
            });
        }
    });
    FakeServer { url, bodies }
}

async fn serve_connection(
    mut sock: TcpStream,
    seen: Arc<Mutex<Vec<Value>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if sock.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            if sock.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let request_line = head.lines().next().unwrap_or_default().to_string();
        if request_line.starts_with("GET /healthz ") {
            respond(&mut sock, 200, &json!({"status": "ok", "model": "fake"})).await?;
        } else if request_line.starts_with("POST /v1/roundtrip ") {
            let body: Value = serde_json::from_slice(&body).unwrap();
            seen.lock().unwrap().push(body.clone());
            roundtrip(&mut sock, body["text"].as_str().unwrap_or_default()).await?;
        } else {
            respond(&mut sock, 404, &json!({"error": "no such route"})).await?;
        }
    }
}

async fn respond(sock: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    sock.write_all(format!("{head}{body}").as_bytes()).await
}

async fn chunk(sock: &mut TcpStream, event: &str, data: &Value) -> std::io::Result<()> {
    let payload = format!("event: {event}\ndata: {data}\n\n");
    sock.write_all(format!("{:x}\r\n{payload}\r\n", payload.len()).as_bytes())
        .await?;
    sock.flush().await
}

async fn roundtrip(sock: &mut TcpStream, text: &str) -> std::io::Result<()> {
    let setting = |key: &str, default: u64| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .map_or(default, |v| v.parse().unwrap())
    };
    if let code @ (429 | 500) = setting("status", 200) {
        return respond(sock, code as u16, &json!({"error": format!("fake {code}")})).await;
    }
    sock.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await?;
    let (ttft, itl) = (setting("ttft", 20), setting("itl", 20));
    let pieces = setting("pieces", 3);
    tokio::time::sleep(Duration::from_millis(ttft)).await;
    if ["stream_error", "stream_timeout", "truncate"]
        .iter()
        .any(|w| text.contains(w))
    {
        chunk(sock, "piece", &json!({"text": "p0 "})).await?;
        if text.contains("stream_error") {
            chunk(sock, "error", &json!({"error": "decoder failed"})).await?;
        }
        if text.contains("stream_timeout") {
            chunk(sock, "error", &json!({"error": "timed out", "status": 504})).await?;
        }
        return sock.write_all(b"0\r\n\r\n").await;
    }
    let mut joined = String::new();
    for i in 0..pieces {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(itl)).await;
        }
        let piece = format!("p{i} ");
        joined.push_str(&piece);
        chunk(sock, "piece", &json!({"text": piece})).await?;
    }
    let tokens = setting("tokens", pieces);
    let summary = json!({
        "output_ids": (0..tokens).collect::<Vec<_>>(),
        "text": joined,
        "text_tokens": 10,
        "latent_tokens": 4,
        "decode_seconds": 0.1,
    });
    chunk(sock, "done", &summary).await?;
    sock.write_all(b"0\r\n\r\n").await
}
