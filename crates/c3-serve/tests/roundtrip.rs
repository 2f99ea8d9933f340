//! The service's outputs equal the runtime's: 16 concurrent clients get what serial
//! `C3Runtime::roundtrip` gives; streamed pieces join to the final text; a latent
//! file from `/v1/compress` is the runtime's and decompresses to the round trip's
//! text; the summary has every field of `c3 roundtrip --json`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use c3_core::Cascade;
use c3_runtime::latent_file;
use common::*;
use serde_json::{Value, json};

fn serial(doc: &str, limit: Option<usize>) -> c3_core::Reconstruction {
    let rt = runtime();
    rt.roundtrip(doc, rt.prompt(), &rt.reference_generation(), limit)
        .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v["output_ids"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_clients_get_the_serial_outputs() {
    let docs = documents();
    let want: Vec<_> = docs.iter().map(|d| serial(d, None)).collect();
    assert!(
        want.iter().any(|r| r.windows.len() >= 4),
        "multi-window documents"
    );
    // A batch of 5 rows for 16 clients: rows join at different positions and wait
    // for free slots.
    let server = Server::start(5, 64, Default::default()).await;
    let mut clients = Vec::new();
    for c in 0..16 {
        let (addr, docs) = (server.addr, docs.clone());
        clients.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for k in 0..3 {
                let i = (c + 3 * k) % docs.len();
                let body = json!({ "text": docs[i] }).to_string();
                let (status, bytes) = request(addr, "POST", "/v1/roundtrip", body.into()).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
                got.push((i, parse(&bytes)));
            }
            got
        }));
    }
    for c in clients {
        for (i, v) in c.await.unwrap() {
            assert_eq!(v["text"], want[i].text, "document {i}");
            assert_eq!(ids(&v), want[i].generation.ids, "document {i}");
            assert_eq!(v["n_windows"], want[i].windows.len());
        }
    }
    server.wait_idle().await;
    let (_, text) = server.get("/metrics").await;
    assert_eq!(
        metric(
            &text,
            "c3_http_requests_total{route=\"/v1/roundtrip\",status=\"200\"}"
        ),
        Some(48.0),
        "{text}"
    );
    for name in [
        "c3_time_to_first_token_seconds_count",
        "c3_inter_token_latency_seconds_count",
        "c3_generated_tokens_total",
        "c3_http_request_duration_seconds_count",
    ] {
        assert!(metric(&text, name).unwrap() > 0.0, "{name}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_has_the_cli_fields() {
    let server = Server::default().await;
    let doc = &documents()[7];
    let (status, v) = server
        .post_json(
            "/v1/roundtrip",
            &json!({ "text": doc, "max_new_tokens": 9 }),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let want = serial(doc, Some(9));
    assert_eq!(v["text"], want.text);
    assert_eq!(ids(&v), want.generation.ids);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "text",
            "output_ids",
            "finish_reason",
            "text_tokens",
            "window",
            "n_windows",
            "latent_tokens",
            "compression",
            "qwen_text_tokens",
            "compression_qwen",
            "char_precision",
            "word_precision",
            "encode_seconds",
            "decode_seconds",
            "decode_tokens_per_second",
            "windows",
            "backend",
        ]
    );
    assert_eq!(v["window"], WINDOW);
    assert_eq!(
        v["finish_reason"], "length",
        "a limit of 9 cuts 24-token windows"
    );
    assert_eq!(v["backend"], "onnxruntime");
    assert_eq!(v["qwen_text_tokens"], Value::Null);
    assert_eq!(v["windows"].as_array().unwrap().len(), want.windows.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_pieces_join_to_the_final_text() {
    let server = Server::start(3, 64, Default::default()).await;
    let docs = documents();
    // Four streams at once (their rows share the batch), multi-byte text included.
    let mut streams = Vec::new();
    for i in [1, 5, 6, 7] {
        let addr = server.addr;
        let doc = docs[i].clone();
        streams.push(tokio::spawn(async move {
            let s = EventStream::open(addr, "/v1/roundtrip", &json!({"text": doc, "stream": true}))
                .await;
            assert_eq!(s.status, 200);
            assert!(
                s.content_type.starts_with("text/event-stream"),
                "{}",
                s.content_type
            );
            (i, s.collect().await)
        }));
    }
    for s in streams {
        let (i, events) = s.await.unwrap();
        let (text, done) = joined(&events);
        let want = serial(&docs[i], None);
        assert_eq!(text, want.text, "document {i}");
        assert_eq!(done["text"], want.text);
        assert_eq!(ids(&done), want.generation.ids);
        assert!(events.len() > 2, "document {i} came in pieces: {events:?}");
    }
    server.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_latents_decompress_to_the_round_trip_text() {
    let server = Server::default().await;
    let rt = runtime();
    let docs: Vec<String> = documents().into_iter().skip(4).collect();
    let (status, v) = server
        .post_json("/v1/compress", &json!({ "documents": docs }))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["n_latents"], rt.n_latents());
    let doc_ids: Vec<Vec<u32>> = docs.iter().map(|d| rt.document_ids(d).unwrap()).collect();
    let lens: Vec<usize> = doc_ids.iter().map(Vec::len).collect();
    assert_eq!(v["text_tokens"], json!(lens));
    // The file is the one `c3 compress` writes for these documents (sources 0, 1, ..).
    let bytes = BASE64.decode(v["latent_file"].as_str().unwrap()).unwrap();
    let c = rt.compress_documents(&doc_ids).unwrap();
    let sources: Vec<String> = (0..docs.len()).map(|i| i.to_string()).collect();
    let want = latent_file::to_bytes(&rt, &c, &sources).unwrap();
    assert_same_latent_file(&bytes, &want);
    let file = latent_file::from_bytes(&bytes, &rt).unwrap();
    assert_eq!(file.compressed, c);
    assert_eq!(file.sources, sources);

    for limit in [None, Some(9)] {
        let mut req = json!({ "latent_file": v["latent_file"] });
        if let Some(l) = limit {
            req["max_new_tokens"] = json!(l);
        }
        let (status, out) = server.post_json("/v1/decompress", &req).await;
        assert_eq!(status, 200, "{out}");
        let texts: Vec<String> = serde_json::from_value(out["texts"].clone()).unwrap();
        let want: Vec<String> = docs.iter().map(|d| serial(d, limit).text).collect();
        assert_eq!(texts, want, "limit {limit:?}");
    }
}

/// The exact bytes `c3 compress` writes (latent files are byte-reproducible).
fn assert_same_latent_file(got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "latent files differ ({} vs {} bytes)",
        got.len(),
        want.len()
    );
}

/// A request's own `prompt` reaches the decoder: the service answers what the runtime
/// gives after exactly that prompt, streamed or not, round trip or decompress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_prompt_is_decoded_after() {
    let server = Server::default().await;
    let rt = runtime();
    let ask = "Summarize the text: ";
    let prompt = rt.prompt_for(Some(ask)).unwrap();
    let doc = &documents()[2];
    let want = rt
        .roundtrip(doc, &prompt, &rt.reference_generation(), Some(10))
        .unwrap();
    let (status, v) = server
        .post_json(
            "/v1/roundtrip",
            &json!({"text": doc, "prompt": ask, "max_new_tokens": 10}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), want.generation.ids);
    assert_ne!(
        ids(&v),
        serial(doc, Some(10)).generation.ids,
        "the prompt changed nothing"
    );
    let (status, c) = server
        .post_json("/v1/compress", &json!({"documents": [doc]}))
        .await;
    assert_eq!(status, 200, "{c}");
    let (status, out) = server
        .post_json(
            "/v1/decompress",
            &json!({"latent_file": c["latent_file"], "prompt": ask, "max_new_tokens": 10}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["texts"][0], json!(want.text));
}
