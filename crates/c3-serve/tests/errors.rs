//! Every bad input gets its status and one-line JSON error, and the server stays
//! healthy: bad JSON, missing or wrong fields, empty text, limits, oversized bodies,
//! untrusted latent files, unknown routes; timeouts (504) and shutdown (503).

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use c3_serve::ServeOptions;
use common::*;
use safetensors::{Dtype, SafeTensors, serialize, tensor::TensorView};
use serde_json::{Value, json};

async fn expect(
    server: &Server,
    path: &str,
    body: impl Into<bytes::Bytes>,
    status: u16,
    needle: &str,
) {
    let body = body.into();
    let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).to_string();
    let (got, v) = server.post(path, body).await;
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"));
    assert_eq!(got, status, "{path} {shown}: {msg}");
    assert!(
        msg.contains(needle),
        "{path} {shown}: `{msg}` lacks `{needle}`"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert_eq!(v.as_object().unwrap().len(), 1, "only `error`: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_and_the_server_stays_healthy() {
    let server = Server::start(
        4,
        64,
        ServeOptions {
            max_text_tokens: 200,
            ..Default::default()
        },
    )
    .await;
    let rt = "/v1/roundtrip";
    expect(&server, rt, "not json", 400, "bad JSON request").await;
    expect(&server, rt, "", 400, "the request body is empty").await;
    expect(&server, rt, "{\"text\": \"unterminated", 400, "EOF").await;
    expect(&server, rt, "{}", 400, "missing field `text`").await;
    expect(&server, rt, "[1]", 400, "invalid type").await;
    expect(&server, rt, r#"{"text": 5}"#, 400, "invalid type: integer").await;
    expect(&server, rt, r#"{"text": ""}"#, 400, "`text` is empty").await;
    expect(&server, rt, r#"{"text": " \n\t "}"#, 400, "`text` is empty").await;
    expect(
        &server,
        rt,
        r#"{"text": "x", "max_new_tokens": 0}"#,
        400,
        "at least 1",
    )
    .await;
    expect(
        &server,
        rt,
        r#"{"text": "x", "max_new_tokens": -3}"#,
        400,
        "invalid value",
    )
    .await;
    expect(
        &server,
        rt,
        r#"{"text": "x", "stream": "yes"}"#,
        400,
        "invalid type",
    )
    .await;
    expect(
        &server,
        rt,
        r#"{"text": "x", "max_tokens": 3}"#,
        400,
        "unknown field `max_tokens`",
    )
    .await;
    expect(
        &server,
        rt,
        r#"{"text": "\ud800"}"#,
        400,
        "bad JSON request",
    )
    .await;
    // Raw bytes that are not UTF-8 inside the JSON string.
    expect(
        &server,
        rt,
        &b"{\"text\": \"ok \xff\xfe\"}"[..],
        400,
        "bad JSON request",
    )
    .await;
    let long = "word ".repeat(50);
    expect(
        &server,
        rt,
        json!({ "text": long }).to_string(),
        400,
        "over this server's limit of 200",
    )
    .await;
    // A request's own prompt: empty, of the wrong type, or too long for the rows.
    expect(
        &server,
        rt,
        r#"{"text": "x", "prompt": "  "}"#,
        400,
        "`prompt`: the prompt is empty",
    )
    .await;
    expect(
        &server,
        rt,
        r#"{"text": "x", "prompt": 7}"#,
        400,
        "invalid type",
    )
    .await;
    expect(
        &server,
        rt,
        json!({ "text": "x", "prompt": "ask ".repeat(300) }).to_string(),
        400,
        "positions per row",
    )
    .await;

    let c = "/v1/compress";
    expect(
        &server,
        c,
        r#"{"documents": []}"#,
        400,
        "`documents` is empty",
    )
    .await;
    expect(
        &server,
        c,
        r#"{"documents": ["a", "  "]}"#,
        400,
        "document 1 is empty",
    )
    .await;
    expect(&server, c, r#"{"documents": "a"}"#, 400, "invalid type").await;
    expect(
        &server,
        c,
        r#"{"documents": ["a"], "sources": ["x", "y"]}"#,
        400,
        "2 `sources` for 1 documents",
    )
    .await;

    let d = "/v1/decompress";
    expect(&server, d, r#"{}"#, 400, "missing field `latent_file`").await;
    expect(&server, d, r#"{"latent_file": "%%%"}"#, 400, "not base64").await;
    let good = latent_file_b64(&server).await;
    expect(
        &server,
        d,
        json!({"latent_file": good, "max_new_tokens": 0}).to_string(),
        400,
        "at least 1",
    )
    .await;
    expect(
        &server,
        d,
        json!({"latent_file": good, "prompt": ""}).to_string(),
        400,
        "`prompt`: the prompt is empty",
    )
    .await;
    expect(
        &server,
        d,
        json!({"latent_file": good, "prompt": "ask ".repeat(300)}).to_string(),
        400,
        "positions per row",
    )
    .await;
    for (what, bytes, needle) in bad_latent_files(&BASE64.decode(&good).unwrap()) {
        let body = json!({ "latent_file": BASE64.encode(&bytes) }).to_string();
        let (status, v) = server.post(d, body).await;
        let msg = v["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{what}: {v}");
        assert!(msg.contains(needle), "{what}: `{msg}` lacks `{needle}`");
        assert!(msg.starts_with("`latent_file`: "), "{what}: {msg}");
        assert!(!msg.contains('\n'), "{what}: {msg}");
    }

    // Unknown routes and methods answer in the same shape.
    let (status, body) = server.get("/v1/nothing").await;
    assert_eq!(
        (status, parse(body.as_bytes())["error"].as_str().unwrap()),
        (404, "no route for GET /v1/nothing")
    );
    let (status, body) = server.get("/v1/roundtrip").await;
    assert_eq!(status, 405, "{body}");
    assert!(
        parse(body.as_bytes())["error"]
            .as_str()
            .unwrap()
            .contains("does not take GET")
    );

    // Still healthy and still working; nothing leaked.
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(body.as_bytes())["status"], "ok");
    let (status, v) = server.post_json(rt, &json!({"text": "still fine"})).await;
    assert_eq!(status, 200, "{v}");
    server.wait_idle().await;
    let (_, text) = server.get("/metrics").await;
    assert!(
        metric(
            &text,
            "c3_http_requests_total{route=\"/v1/roundtrip\",status=\"400\"}"
        )
        .unwrap()
            >= 15.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "c3_http_requests_total{route=\"unmatched\",status=\"404\"}"
        )
        .is_some(),
        "{text}"
    );
}

/// A good latent file of two documents, base64.
async fn latent_file_b64(server: &Server) -> String {
    let (status, v) = server
        .post_json("/v1/compress", &json!({"documents": ["first document", "and a second one, longer than one window of 24 bytes"]}))
        .await;
    assert_eq!(status, 200, "{v}");
    v["latent_file"].as_str().unwrap().to_string()
}

/// Uploads an attacker or a broken client could send: (what, bytes, message part).
fn bad_latent_files(good: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let st = SafeTensors::deserialize(good).unwrap();
    let (_, meta) = SafeTensors::read_metadata(good).unwrap();
    let meta = meta.metadata().clone().unwrap();
    let t = st.tensor("latents").unwrap();
    let (shape, data) = (t.shape().to_vec(), t.data().to_vec());
    let write = |dtype: Dtype,
                 shape: Vec<usize>,
                 data: &[u8],
                 meta: &std::collections::HashMap<String, String>| {
        let view = TensorView::new(dtype, shape, data).unwrap();
        serialize([("latents", view)], Some(meta.clone())).unwrap()
    };
    let mut nan = data.clone();
    nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut inf = data.clone();
    inf[..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let mut other = meta.clone();
    other.insert("c3.export_manifest_sha256".into(), "0".repeat(64));
    let mut bad_index = meta.clone();
    bad_index.insert("c3.text_tokens".into(), "[1, 99999]".into());
    let mut bomb = (1u64 << 60).to_le_bytes().to_vec();
    bomb.extend_from_slice(b"{\"a\":1}");
    let half: Vec<u8> = data.chunks(4).flat_map(|c| [c[0], c[1]]).collect();
    let flat = vec![shape.iter().product::<usize>()];
    vec![
        ("garbage", b"hello, world".to_vec(), "not a latent file"),
        ("header bomb", bomb, "not a latent file"),
        (
            "truncated",
            good[..good.len() - 100].to_vec(),
            "not a latent file",
        ),
        (
            "f16 latents",
            write(Dtype::F16, shape.clone(), &half, &meta),
            "expected F32",
        ),
        (
            "flat shape",
            write(Dtype::F32, flat, &data, &meta),
            "expected [windows, N, D]",
        ),
        (
            "NaN",
            write(Dtype::F32, shape.clone(), &nan, &meta),
            "not finite",
        ),
        (
            "Inf",
            write(Dtype::F32, shape.clone(), &inf, &meta),
            "not finite",
        ),
        (
            "another export",
            write(Dtype::F32, shape.clone(), &data, &other),
            "made by export",
        ),
        (
            "bad window index",
            write(Dtype::F32, shape, &data, &bad_index),
            "of the index",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_body_gets_413_in_the_json_shape() {
    let server = Server::start(
        2,
        8,
        ServeOptions {
            max_body: 4096,
            ..Default::default()
        },
    )
    .await;
    let body = json!({ "text": "x".repeat(10_000) }).to_string();
    for path in ["/v1/roundtrip", "/v1/compress", "/v1/decompress"] {
        expect(
            &server,
            path,
            body.clone(),
            413,
            "over this server's limit of 4096 bytes (--max-body)",
        )
        .await;
    }
    let (status, _) = server
        .post_json("/v1/roundtrip", &json!({"text": "small"}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_request_timeout_the_answer_is_504_and_the_rows_are_freed() {
    let server = Server::start(
        1,
        8,
        ServeOptions {
            request_timeout: Duration::from_millis(5),
            ..Default::default()
        },
    )
    .await;
    // ~180 windows through one row: hundreds of milliseconds at least.
    let doc = "A document of many windows, decoded one window at a time by a batch of one row. "
        .repeat(50);
    expect(
        &server,
        "/v1/roundtrip",
        json!({ "text": doc }).to_string(),
        504,
        "--request-timeout",
    )
    .await;
    // Streaming: the status has left, so the timeout is an `error` event.
    let mut s = EventStream::open(
        server.addr,
        "/v1/roundtrip",
        &json!({"text": doc, "stream": true}),
    )
    .await;
    assert_eq!(s.status, 200);
    let mut last = None;
    while let Some(e) = s.next().await {
        last = Some(e);
    }
    let last = last.unwrap();
    assert_eq!(last.event, "error", "{last:?}");
    assert_eq!(last.data["status"], 504);
    assert!(
        last.data["error"]
            .as_str()
            .unwrap()
            .contains("--request-timeout")
    );
    server.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_shutting_down_requests_get_503() {
    let server = Server::default().await;
    server.state.begin_shutdown();
    expect(
        &server,
        "/v1/roundtrip",
        json!({"text": "hello"}).to_string(),
        503,
        "shutting down",
    )
    .await;
    expect(
        &server,
        "/v1/compress",
        json!({"documents": ["hello"]}).to_string(),
        503,
        "shutting down",
    )
    .await;
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 503);
    assert_eq!(parse(body.as_bytes())["status"], "shutting_down");
    let _: Value = Value::Null;
}
