//! The locked door: with API keys every route wants `Authorization: Bearer KEY`
//! (401 in the one JSON shape otherwise, before the body is read), `/healthz` and
//! `/metrics` are closed unless opened by flag, and `/healthz` names no path of the
//! host. The `c3-serve` binary refuses a bad key file in one line.

mod common;

use std::sync::Arc;

use c3_serve::ServeOptions;
use c3_serve::auth::ApiKeys;
use common::*;
use serde_json::json;

const KEY: &str = "k3y-for-the-tests-0123456789";

fn keyed(open_healthz: bool, open_metrics: bool) -> ServeOptions {
    ServeOptions {
        api_keys: Some(Arc::new(
            ApiKeys::parse(&format!("# test keys\n{KEY}\nanother-key-abcdefghij\n")).unwrap(),
        )),
        open_healthz,
        open_metrics,
        ..Default::default()
    }
}

async fn call(server: &Server, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let body = match method {
        "POST" => json!({"text": "Locked doors keep strangers out."}).to_string(),
        _ => String::new(),
    };
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    let (status, h, bytes) = request_with(server.addr, method, path, body.into(), &headers).await;
    if status == 401 {
        assert_eq!(h["www-authenticate"], "Bearer");
        let v = parse(&bytes);
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert!(v["error"].as_str().unwrap().contains("API key"), "{v}");
    }
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_wants_a_key() {
    let server = Server::start(4, 64, keyed(false, false)).await;
    let good = format!("Bearer {KEY}");
    for (method, path) in [
        ("POST", "/v1/roundtrip"),
        ("POST", "/v1/compress"),
        ("POST", "/v1/decompress"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/v1/nothing"),
    ] {
        for bad in [
            None,
            Some("Bearer wrong-key-0123456789"),
            Some("Basic azN5LWZvci10aGUtdGVzdHM="),
            Some("Bearer k3y-for-the-tests-012345678"),
            Some(KEY),
        ] {
            let (status, body) = call(&server, method, path, bad).await;
            assert_eq!(status, 401, "{method} {path} with {bad:?}: {body}");
        }
    }
    let (status, body) = call(&server, "POST", "/v1/roundtrip", Some(&good)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &server,
        "POST",
        "/v1/roundtrip",
        Some("bearer another-key-abcdefghij"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&server, "GET", "/healthz", Some(&good)).await;
    assert_eq!(status, 200, "{body}");
    // The health answer names the export's folder, not where it lies on the host.
    let v = parse(body.as_bytes());
    let model = v["model"].as_str().unwrap();
    assert!(!model.contains('/'), "{v}");
    assert!(!body.contains(export_dir().to_str().unwrap()), "{body}");
    let (status, text) = call(&server, "GET", "/metrics", Some(&good)).await;
    assert_eq!(status, 200);
    assert!(
        metric(
            &text,
            "c3_http_requests_total{route=\"/v1/roundtrip\",status=\"401\"}"
        )
        .unwrap()
            >= 5.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_open_by_flag() {
    let server = Server::start(4, 64, keyed(true, false)).await;
    assert_eq!(call(&server, "GET", "/healthz", None).await.0, 200);
    assert_eq!(call(&server, "GET", "/metrics", None).await.0, 401);
    assert_eq!(call(&server, "POST", "/v1/roundtrip", None).await.0, 401);
    drop(server);
    let server = Server::start(4, 64, keyed(false, true)).await;
    assert_eq!(call(&server, "GET", "/healthz", None).await.0, 401);
    assert_eq!(call(&server, "GET", "/metrics", None).await.0, 200);
}

#[test]
fn the_binary_refuses_a_bad_key_file_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("keys");
    for (content, needle) in [
        ("# none\n", "no key in the file"),
        ("short\n", "too short"),
        ("0123456789abcdef 01\n", "whitespace"),
    ] {
        std::fs::write(&f, content).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_c3-serve"))
            .arg(export_dir())
            .arg("--api-key-file")
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_c3-serve"))
        .arg(export_dir())
        .arg("--open-healthz")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "--open-healthz needs --api-key-file"
    );
}
