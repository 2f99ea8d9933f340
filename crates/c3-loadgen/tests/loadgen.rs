//! The load generator against a fake SSE server with scripted pieces and delays:
//! timings, token counts, percentiles, errors, warm-up, duration and Ctrl-C.
//!
//! Timing checks have exact lower bounds (the server sleeps at least that long) and
//! loose upper bounds, since the machine running the tests may be busy.

mod common;

use std::sync::Arc;
use std::time::Duration;

use c3_loadgen::{Client, LevelReport, Plan, Quiet, Stop, run_levels};

const MS: f64 = 1e-3;

fn plan(concurrency: &[usize], stop: Stop) -> Plan {
    Plan {
        concurrency: concurrency.to_vec(),
        stop,
        warmup: 0,
        max_new_tokens: None,
    }
}

async fn run(url: &str, docs: &[&str], plan: &Plan, timeout: Duration) -> Vec<LevelReport> {
    let client = Client::new(url, timeout, 16).unwrap();
    let docs: Arc<[String]> = docs.iter().map(|d| d.to_string()).collect();
    let (_tx, stop) = tokio::sync::watch::channel(false);
    run_levels(&client, docs, plan, Arc::new(Quiet), stop).await
}

fn between(x: Option<f64>, lo_ms: f64, hi_ms: f64) -> bool {
    x.is_some_and(|x| x >= lo_ms * MS && x < hi_ms * MS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_itl_and_tokens_come_from_the_stream() {
    let server = common::start().await;
    let mut p = plan(&[1, 2], Stop::Requests(4));
    p.max_new_tokens = Some(9);
    let docs = ["ttft=100 itl=40 pieces=4 tokens=9"];
    let levels = run(&server.url, &docs, &p, Duration::from_secs(30)).await;
    assert_eq!(levels.len(), 2);
    for l in &levels {
        assert!(!l.interrupted);
        assert_eq!((l.requests, l.ok, l.errors), (4, 4, 0), "{l:?}");
        assert_eq!(l.generated_tokens, 36);
        assert_eq!(l.pieces, 16);
        assert_eq!(l.piece_text_mismatches, 0);
        assert_eq!(l.ttft_seconds.count, 4);
        assert!(
            between(l.ttft_seconds.p50, 100.0, 180.0),
            "{:?}",
            l.ttft_seconds
        );
        assert!(l.ttft_seconds.min.unwrap() >= 100.0 * MS);
        // Three gaps per request; a late piece can shorten the next gap a little.
        assert_eq!(l.itl_seconds.count, 12);
        assert!(
            between(l.itl_seconds.p50, 30.0, 100.0),
            "{:?}",
            l.itl_seconds
        );
        // ttft + 3 gaps.
        assert!(
            l.latency_seconds.min.unwrap() >= 220.0 * MS,
            "{:?}",
            l.latency_seconds
        );
        let tps = l.generated_tokens as f64 / l.wall_seconds;
        assert!((l.tokens_per_second - tps).abs() < 1e-9);
        assert!((l.requests_per_second - 4.0 / l.wall_seconds).abs() < 1e-9);
    }
    // Four requests back to back on one loop, two by two on two loops.
    assert!(levels[0].wall_seconds >= 4.0 * 220.0 * MS);
    assert!(levels[1].wall_seconds < levels[0].wall_seconds);
    let bodies = server.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 8);
    assert_eq!(bodies[0]["stream"], true);
    assert_eq!(bodies[0]["max_new_tokens"], 9);
    assert_eq!(bodies[0]["text"], docs[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_are_nearest_rank_over_all_samples() {
    let server = common::start().await;
    let docs = [
        "ttft=50 pieces=1",
        "ttft=100 pieces=1",
        "ttft=150 pieces=1",
        "ttft=200 pieces=1",
    ];
    let levels = run(
        &server.url,
        &docs,
        &plan(&[1], Stop::Requests(8)),
        Duration::from_secs(30),
    )
    .await;
    let l = &levels[0];
    assert_eq!(l.ok, 8);
    // Sorted TTFTs are about 50 50 100 100 150 150 200 200 ms: rank 4 for p50,
    // rank ceil(0.95 * 8) = 8 for p95 and p99.
    let t = &l.ttft_seconds;
    assert_eq!(t.count, 8);
    assert!(between(t.min, 50.0, 100.0), "{t:?}");
    assert!(between(t.p50, 100.0, 150.0), "{t:?}");
    assert!(between(t.p95, 200.0, 300.0), "{t:?}");
    assert_eq!(t.p99, t.max);
    assert_eq!(t.p95, t.max);
    // One piece per request: no gaps to measure.
    assert_eq!(l.itl_seconds.count, 0);
    assert_eq!(l.itl_seconds.p50, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_by_kind_and_not_retried() {
    let server = common::start().await;
    let docs = [
        "status=429",
        "status=500",
        "ttft=10",
        "stream_error",
        "truncate",
        "stream_timeout",
    ];
    let levels = run(
        &server.url,
        &docs,
        &plan(&[2], Stop::Requests(12)),
        Duration::from_secs(30),
    )
    .await;
    let l = &levels[0];
    assert_eq!(
        (l.requests, l.ok, l.errors, l.rejected_429),
        (12, 2, 10, 2),
        "{l:?}"
    );
    let kinds: Vec<_> = l
        .errors_by_kind
        .iter()
        .map(|(k, e)| (k.as_str(), e.count))
        .collect();
    assert_eq!(
        kinds,
        [
            ("http_429", 2),
            ("http_500", 2),
            ("incomplete", 2),
            ("stream_504", 2),
            ("stream_error", 2)
        ]
    );
    assert_eq!(l.errors_by_kind["http_429"].example, "HTTP 429: fake 429");
    assert_eq!(l.errors_by_kind["http_500"].example, "HTTP 500: fake 500");
    assert_eq!(
        l.errors_by_kind["stream_error"].example,
        "event: error: decoder failed"
    );
    // Only the two successful requests feed the timings and tokens.
    assert_eq!(l.latency_seconds.count, 2);
    assert_eq!(l.ttft_seconds.count, 2);
    assert_eq!(l.generated_tokens, 6);
    // Exactly one request per document slot: nothing was retried.
    assert_eq!(server.bodies.lock().unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out() {
    let server = common::start().await;
    let levels = run(
        &server.url,
        &["ttft=2000"],
        &plan(&[1], Stop::Requests(1)),
        Duration::from_millis(200),
    )
    .await;
    let l = &levels[0];
    assert_eq!((l.ok, l.errors), (0, 1));
    assert_eq!(l.errors_by_kind["timeout"].count, 1);
    assert!(l.wall_seconds < 1.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_requests_are_sent_but_not_counted() {
    let server = common::start().await;
    let mut p = plan(&[2], Stop::Requests(3));
    p.warmup = 2;
    let levels = run(&server.url, &["ttft=10"], &p, Duration::from_secs(30)).await;
    assert_eq!(levels[0].requests, 3);
    assert_eq!(server.bodies.lock().unwrap().len(), 2 * 2 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_levels_stop_starting_requests_at_the_deadline() {
    let server = common::start().await;
    let p = plan(&[2], Stop::Duration(Duration::from_millis(300)));
    let levels = run(
        &server.url,
        &["ttft=50 pieces=1"],
        &p,
        Duration::from_secs(30),
    )
    .await;
    let l = &levels[0];
    // Each loop starts requests at 0, ~50, ... ~250 ms: 6 each, the last ends ~350 ms.
    assert!(l.ok >= 4 && l.ok <= 12, "{l:?}");
    assert!(l.wall_seconds >= 0.3, "{l:?}");
    assert_eq!(l.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_reports_what_was_measured_so_far() {
    let server = common::start().await;
    let client = Client::new(&server.url, Duration::from_secs(30), 4).unwrap();
    let docs: Arc<[String]> = vec!["ttft=200 pieces=1".to_string()].into();
    let (tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        tx.send(true).unwrap();
    });
    let p = plan(&[1, 4], Stop::Requests(100));
    let levels = run_levels(&client, docs, &p, Arc::new(Quiet), stop).await;
    // The second level never starts; the first has the requests done by 700 ms.
    assert_eq!(levels.len(), 1);
    let l = &levels[0];
    assert!(l.interrupted);
    assert!((1..=3).contains(&l.ok), "{l:?}");
    assert_eq!(l.requests, l.ok);
    assert!(l.wall_seconds >= 0.7 && l.wall_seconds < 2.0, "{l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_returns_the_server_json() {
    let server = common::start().await;
    let client = Client::new(&server.url, Duration::from_secs(5), 1).unwrap();
    let h = client.healthz().await.unwrap();
    assert_eq!(h["status"], "ok");
    let gone = Client::new("http://127.0.0.1:1", Duration::from_secs(5), 1).unwrap();
    let e = gone.healthz().await.unwrap_err().to_string();
    assert!(e.starts_with("http://127.0.0.1:1/healthz: "), "{e}");
}
