//! Shared by the service's tests: the tiny fixture exported once per test binary, a
//! server started in-process on 127.0.0.1:0, and a small HTTP/1.1 client (hyper)
//! that can read a stream event by event and hang up mid-stream.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use c3_runtime::{C3Runtime, RuntimeOptions, SchedulerOptions};
use c3_serve::{AppState, ServeOptions};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// A small window, so short texts make several windows.
pub const WINDOW: usize = 24;

/// The tiny fixture, exported once per test binary into cargo's test temp dir (one
/// folder per test binary, replaced on each run, so runs do not pile up exports).
pub fn export_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_string_lossy().to_string();
        let out =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("c3-serve-export-{name}"));
        let _ = std::fs::remove_dir_all(&out);
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny");
        c3_export::run(&c3_export::ExportOptions::new(fixture, out.clone())).unwrap();
        out
    })
}

/// The export loaded once; every server of the binary shares it.
pub fn runtime() -> Arc<C3Runtime> {
    static RT: OnceLock<Arc<C3Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        let options = RuntimeOptions {
            window: Some(WINDOW),
            ..RuntimeOptions::default()
        };
        Arc::new(C3Runtime::load(export_dir(), options).unwrap())
    })
    .clone()
}

/// Documents of 1 to 5 windows of 24 tokens (the fixture is byte-level), some with
/// multi-byte characters and surrounding whitespace.
pub fn documents() -> Vec<String> {
    let base = "Continuous batching lets rows join a running batch at any step and leave it \
                as soon as they end, so one loaded model serves many callers at once.";
    let words: Vec<&str> = base.split(' ').collect();
    let mut docs: Vec<String> = (0..6)
        .map(|i| {
            let n = 3 + (i * 5) % words.len();
            format!("{i} {}", words[..n].join(" "))
        })
        .collect();
    docs.push("  Grüße aus Köln — 日本語のテキスト, αβγ 🦀 and more text after it.\n".into());
    docs.push(base.to_string());
    docs
}

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// A server with these limits (window [`WINDOW`]).
    pub async fn start(max_batch: usize, max_queue: usize, options: ServeOptions) -> Server {
        let sched = SchedulerOptions {
            max_batch,
            max_queue,
            ..Default::default()
        };
        let state = Arc::new(AppState::new(runtime(), sched, options).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(c3_serve::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            state,
            stop: Some(tx),
            task,
        }
    }

    pub async fn default() -> Server {
        Self::start(4, 64, ServeOptions::default()).await
    }

    /// Resolves the shutdown future `serve` was given.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> (u16, Value) {
        let (status, bytes) = request(self.addr, "POST", path, body.into()).await;
        (status, parse(&bytes))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post(path, body.to_string()).await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let (status, bytes) = request(self.addr, "GET", path, Bytes::new()).await;
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// A gauge or counter's value in `/metrics` (the first sample named `name`).
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").await;
        metric(&text, name).unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    /// Waits until nothing is queued or running.
    pub async fn wait_idle(&self) {
        let t0 = std::time::Instant::now();
        loop {
            let (q, r) = (
                self.metric("c3_queue_depth").await,
                self.metric("c3_running_rows").await,
            );
            if q == 0.0 && r == 0.0 {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "queue {q}, running {r}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of the first sample line starting with `name` (then a space or `{`).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

async fn connect(
    addr: std::net::SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, task)
}

fn build(method: &str, path: &str, body: Bytes) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap()
}

/// One request on its own connection: status and whole body.
pub async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
) -> (u16, Bytes) {
    let (mut send, _conn) = connect(addr).await;
    let resp = send.send_request(build(method, path, body)).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes)
}

/// One request with extra headers on its own connection: status, the answer's
/// headers, whole body.
pub async fn request_with(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, Bytes) {
    let (mut send, _conn) = connect(addr).await;
    let mut req = build(method, path, body);
    for (k, v) in headers {
        req.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

/// A streamed response read event by event; dropping it hangs up.
pub struct EventStream {
    pub status: u16,
    pub content_type: String,
    body: Incoming,
    buf: Vec<u8>,
    conn: tokio::task::JoinHandle<()>,
}

impl EventStream {
    pub async fn open(addr: std::net::SocketAddr, path: &str, body: &Value) -> EventStream {
        let (mut send, conn) = connect(addr).await;
        let resp = send
            .send_request(build("POST", path, Bytes::from(body.to_string())))
            .await
            .unwrap();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        EventStream {
            status: resp.status().as_u16(),
            content_type,
            body: resp.into_body(),
            buf: Vec::new(),
            conn,
        }
    }

    /// The next event (keep-alive comments skipped), `None` at the end.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).unwrap();
                let (mut event, mut data) = (String::new(), String::new());
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(SseEvent {
                    event,
                    data: parse(data.as_bytes()),
                });
            }
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => panic!("stream broke: {e}"),
                None => return None,
            }
        }
    }

    /// Every remaining event.
    pub async fn collect(mut self) -> Vec<SseEvent> {
        let mut v = Vec::new();
        while let Some(e) = self.next().await {
            v.push(e);
        }
        v
    }

    /// Closes the connection at once, as a client that goes away.
    pub fn hang_up(self) {
        self.conn.abort();
    }
}

/// Pieces joined, and the `done` summary (panics on an `error` event).
pub fn joined(events: &[SseEvent]) -> (String, Value) {
    let mut text = String::new();
    let mut done = None;
    for e in events {
        match e.event.as_str() {
            "piece" => {
                assert!(done.is_none(), "a piece after done");
                text.push_str(e.data["text"].as_str().unwrap());
            }
            "done" => done = Some(e.data.clone()),
            other => panic!("unexpected {other} event: {}", e.data),
        }
    }
    (text, done.expect("a done event"))
}
