//! The HTTP side: `GET /healthz` and one streamed `POST /v1/roundtrip`, timed.
//!
//! Plain HTTP/1.1 (hyper); the pool keeps one connection per concurrent loop alive,
//! so connection set-up is not part of the measured latencies after the first
//! request of each loop.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::sse::{SseEvent, SseParser};
use crate::{Error, Result};

/// Largest error or non-stream body read (bytes); a longer one is a failure itself.
const MAX_BODY: usize = 16 << 20;

/// A client of one C3 service.
#[derive(Clone, Debug)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
    timeout: Duration,
}

/// The measurements of one successful request.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Request sent to `done` event (or to the whole body for a non-stream answer).
    pub latency: Duration,
    /// Request sent to the first `piece` event; `None` when no piece came.
    pub ttft: Option<Duration>,
    /// Gaps between consecutive `piece` events.
    pub itl: Vec<Duration>,
    /// `output_ids.len()` of the summary.
    pub tokens: u64,
    pub pieces: u64,
    /// The pieces joined differ from the summary's `text` (a server bug, counted).
    pub text_mismatch: bool,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered 4xx/5xx; `message` is its `{"error"}` or body text.
    Status { code: u16, message: String },
    /// An `event: error` in the stream, with the status its data names, if any.
    Stream {
        status: Option<u16>,
        message: String,
    },
    /// Connection refused or reset, or a broken body.
    Transport { message: String },
    /// No answer within the client's timeout.
    Timeout,
    /// The stream ended without a `done` event.
    Incomplete,
    /// A summary that is not JSON or lacks `output_ids`.
    BadResponse { message: String },
}

impl Failure {
    /// The key errors are counted under: `http_<status>`, `stream_<status>` (or
    /// `stream_error` without one), `transport`, `timeout`, `incomplete`,
    /// `bad_response`.
    pub fn kind(&self) -> String {
        match self {
            Self::Status { code, .. } => format!("http_{code}"),
            Self::Stream {
                status: Some(code), ..
            } => format!("stream_{code}"),
            Self::Stream { status: None, .. } => "stream_error".into(),
            Self::Transport { .. } => "transport".into(),
            Self::Timeout => "timeout".into(),
            Self::Incomplete => "incomplete".into(),
            Self::BadResponse { .. } => "bad_response".into(),
        }
    }

    /// One line for the report.
    pub fn message(&self) -> String {
        match self {
            Self::Status { code, message } => format!("HTTP {code}: {message}"),
            Self::Stream { message, .. } => format!("event: error: {message}"),
            Self::Transport { message } => message.clone(),
            Self::Timeout => "no answer within the timeout".into(),
            Self::Incomplete => "the stream ended without a done event".into(),
            Self::BadResponse { message } => message.clone(),
        }
    }
}

impl Client {
    /// A client of the service at `url` (`http://host:port`, optionally with a path
    /// prefix); each request fails with [`Failure::Timeout`] after `timeout`.
    pub fn new(url: &str, timeout: Duration, max_idle_connections: usize) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        let bad = |why: &str| Error::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let uri: Uri = base.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported (plain HTTP only)")),
            _ => return Err(bad("expected http://host:port")),
        }
        if uri.host().is_none() {
            return Err(bad("no host"));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_connections)
            .build(connector);
        Ok(Self {
            http,
            base,
            timeout,
        })
    }

    /// The service's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /healthz`: its JSON body (or the body as a string if it is not JSON) when
    /// the answer is 200.
    pub async fn healthz(&self) -> Result<Value> {
        let url = format!("{}/healthz", self.base);
        let req = Request::get(&url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::Server {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let server = |message: String| Error::Server {
            url: url.clone(),
            message,
        };
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| server("no answer within the timeout".into()))?
            .map_err(|e| server(transport_message(&e)))?;
        let status = resp.status();
        let body = read_body(resp.into_body())
            .await
            .map_err(|f| server(f.message()))?;
        let text = String::from_utf8_lossy(&body).trim().to_string();
        if status != StatusCode::OK {
            return Err(server(format!(
                "HTTP {}: {}",
                status.as_u16(),
                one_line(&text)
            )));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Sends `text` as one streamed roundtrip and times it.
    pub async fn roundtrip(
        &self,
        text: &str,
        max_new_tokens: Option<u32>,
    ) -> std::result::Result<Sample, Failure> {
        let mut body = json!({"text": text, "stream": true});
        if let Some(k) = max_new_tokens {
            body["max_new_tokens"] = k.into();
        }
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/v1/roundtrip", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Failure::Transport {
                message: e.to_string(),
            })?;
        let start = Instant::now();
        match tokio::time::timeout(self.timeout, self.exchange(req, start)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
        start: Instant,
    ) -> std::result::Result<Sample, Failure> {
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| Failure::Transport {
                message: transport_message(&e),
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_body(resp.into_body()).await.unwrap_or_default();
            return Err(Failure::Status {
                code: status.as_u16(),
                message: error_message(&body),
            });
        }
        let is_stream = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_stream {
            // A server that ignores "stream": the summary alone, no pieces to time.
            let body = read_body(resp.into_body()).await?;
            return summary_sample(&body, start.elapsed(), Timing::new(start));
        }
        read_stream(resp.into_body(), start).await
    }
}

/// Piece timings of one stream so far.
struct Timing {
    start: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    itl: Vec<Duration>,
    text: String,
    pieces: u64,
}

impl Timing {
    fn new(start: Instant) -> Self {
        Self {
            start,
            first: None,
            last: None,
            itl: Vec::new(),
            text: String::new(),
            pieces: 0,
        }
    }
}

async fn read_stream(mut body: Incoming, start: Instant) -> std::result::Result<Sample, Failure> {
    let mut parser = SseParser::new();
    let mut timing = Timing::new(start);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Transport {
            message: format!("reading the stream: {}", transport_message(&e)),
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        for event in parser.push(&data) {
            if let Some(done) = on_event(&event, now, &mut timing) {
                let sample = done?;
                // Read the stream to its end so the connection goes back to the pool.
                while let Some(Ok(_)) = body.frame().await {}
                return Ok(sample);
            }
        }
    }
    let now = Instant::now();
    if let Some(event) = parser.finish()
        && let Some(done) = on_event(&event, now, &mut timing)
    {
        return done;
    }
    Err(Failure::Incomplete)
}

/// Applies one event arriving at `now`; `Some` ends the request.
fn on_event(
    event: &SseEvent,
    now: Instant,
    t: &mut Timing,
) -> Option<std::result::Result<Sample, Failure>> {
    match event.event.as_str() {
        "piece" => {
            t.pieces += 1;
            if let Some(last) = t.last {
                t.itl.push(now - last);
            }
            t.first.get_or_insert(now);
            t.last = Some(now);
            if let Ok(v) = serde_json::from_str::<Value>(&event.data)
                && let Some(s) = v.get("text").and_then(Value::as_str)
            {
                t.text.push_str(s);
            }
            None
        }
        "done" => {
            let timing = std::mem::replace(t, Timing::new(t.start));
            Some(summary_sample(event.data.as_bytes(), now - t.start, timing))
        }
        "error" => Some(Err(Failure::Stream {
            status: serde_json::from_str::<Value>(&event.data)
                .ok()
                .and_then(|v| v.get("status")?.as_u64())
                .and_then(|s| u16::try_from(s).ok()),
            message: error_message(event.data.as_bytes()),
        })),
        _ => None,
    }
}

/// A sample from the summary JSON `body` and the stream's piece timings.
fn summary_sample(
    body: &[u8],
    latency: Duration,
    t: Timing,
) -> std::result::Result<Sample, Failure> {
    let bad = |m: &str| Failure::BadResponse {
        message: format!("summary: {m}"),
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("not JSON ({e})")))?;
    let tokens = v
        .get("output_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no output_ids array"))?
        .len() as u64;
    let text_mismatch = t.pieces > 0
        && v.get("text")
            .and_then(Value::as_str)
            .is_some_and(|s| s != t.text);
    Ok(Sample {
        latency,
        ttft: t.first.map(|f| f - t.start),
        itl: t.itl,
        tokens,
        pieces: t.pieces,
        text_mismatch,
    })
}

async fn read_body(body: Incoming) -> std::result::Result<Bytes, Failure> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| Failure::Transport {
            message: format!("reading the body: {e}"),
        })
}

/// The `error` field of a JSON error body, else the body as one line.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| one_line(&String::from_utf8_lossy(body)))
}

/// `s` on one line, at most 200 characters.
fn one_line(s: &str) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
    }
}

/// hyper's error with its causes ("client error (Connect): connection refused").
fn transport_message(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let t = Duration::from_secs(1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        assert_eq!(
            Client::new("http://127.0.0.1:8080/", t, 1).unwrap().url(),
            "http://127.0.0.1:8080"
        );
        for (url, why) in [
            ("https://example.org", "https is not supported"),
            ("127.0.0.1:8080", "expected http://"),
            ("http://", "expected http://host:port"),
            ("http://a b:80", "not a URL"),
        ] {
            let e = Client::new(url, t, 1).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn error_bodies_give_one_line() {
        assert_eq!(error_message(br#"{"error":"queue full"}"#), "queue full");
        assert_eq!(
            error_message(b"<html>\n  oops\n</html>"),
            "<html> oops </html>"
        );
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).len(), 203);
    }
}
