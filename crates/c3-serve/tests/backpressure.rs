//! Bounded queue, clients that go away, graceful shutdown: a full queue answers 429;
//! a stream dropped mid-way frees its row (next requests succeed, queue depth and
//! running rows return to 0); on shutdown, running streams finish and `serve` returns.
//!
//! The tiny fixture decodes a window in milliseconds, so timing alone cannot hold a
//! request in place. The tests hold the scheduler instead: a request submitted to it
//! directly, whose event callback (run on the scheduler's thread) waits on a barrier,
//! stops every step until the test releases it.

mod common;

use std::time::Duration;

use c3_core::Cascade;
use c3_runtime::{CompressTask, Event, RoundtripTask, Sink, Task, Ticket};
use common::*;
use serde_json::json;

/// Hundreds of windows (of 24 tokens) decoded by a batch of one row: thousands of
/// steps.
fn long_document() -> String {
    "Rows join a running batch at step boundaries and leave it when they end. ".repeat(60)
}

/// Stops the scheduler's thread at the first event `stop_at` accepts, until
/// released (or until the test ends, panicking or not: the sink then carries on).
struct Hold {
    reached: Option<tokio::sync::oneshot::Receiver<()>>,
    release: Option<std::sync::mpsc::Sender<()>>,
}

fn holding_sink<T: 'static>(stop_at: fn(&Event<T>) -> bool) -> (Sink<T>, Hold) {
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let mut reached_tx = Some(reached_tx);
    let sink: Sink<T> = Box::new(move |e| {
        if stop_at(&e)
            && let Some(tx) = reached_tx.take()
        {
            let _ = tx.send(());
            let _ = release_rx.recv(); // a message or a dropped Hold
        }
        true
    });
    let hold = Hold {
        reached: Some(reached_rx),
        release: Some(release_tx),
    };
    (sink, hold)
}

impl Hold {
    /// Waits until the scheduler's thread is stopped in the sink.
    async fn reached(&mut self) {
        let rx = self.reached.take().expect("waited once");
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the scheduler reached the hold")
            .unwrap();
    }

    fn release(&mut self) {
        self.release.take();
    }
}

fn submit<T: Task>(server: &Server, task: T, sink: Sink<T::Output>) -> Ticket {
    server.state.scheduler.submit(task, sink).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429() {
    // One row, one queued request: a long document held at its first token fills both.
    let server = Server::start(1, 1, Default::default()).await;
    let rt = runtime();
    let task = RoundtripTask {
        prompt: None,
        text_ids: rt.document_ids(&long_document()).unwrap(),
        cfg: rt.reference_generation(),
        limit: None,
    };
    let (sink, mut hold) = holding_sink(|e| matches!(e, Event::Token { .. }));
    let ticket = submit(&server, task, sink);
    hold.reached().await;
    assert_eq!(server.metric("c3_queue_depth").await, 1.0);
    for (path, body) in [
        ("/v1/roundtrip", json!({"text": "one more"})),
        ("/v1/roundtrip", json!({"text": "one more", "stream": true})),
        ("/v1/compress", json!({"documents": ["one more"]})),
    ] {
        let (status, v) = server.post_json(path, &body).await;
        assert_eq!(status, 429, "{path}: {v}");
        assert_eq!(
            v["error"],
            "the queue is full (1 requests waiting); retry later"
        );
    }
    drop(ticket); // cancelled: its rows come back at the next step
    hold.release();
    server.wait_idle().await;
    let (status, v) = server
        .post_json("/v1/roundtrip", &json!({"text": "now there is room"}))
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, text) = server.get("/metrics").await;
    assert_eq!(
        metric(
            &text,
            "c3_http_requests_total{route=\"/v1/roundtrip\",status=\"429\"}"
        ),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_frees_its_row() {
    let server = Server::start(1, 4, Default::default()).await;
    let rt = runtime();
    let mut stream = EventStream::open(
        server.addr,
        "/v1/roundtrip",
        &json!({"text": long_document(), "stream": true}),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.next().await.unwrap().event, "piece");
    // Hold the scheduler mid-stream: a compress queued behind the stream's windows
    // stops it when its latents are done, a few steps into the stream's thousands.
    let task = CompressTask {
        docs: vec![rt.document_ids("hold the scheduler here").unwrap()],
    };
    let (sink, mut hold) = holding_sink(|e| matches!(e, Event::Done(_)));
    let _ticket = submit(&server, task, sink);
    hold.reached().await;
    // The stream is under way, not over: it still has windows waiting for the row.
    // (Its row itself may be empty at this instant: between two of its windows, the
    // queued compress is encoded before the next window is admitted.)
    assert_eq!(
        server.metric("c3_queue_depth").await,
        1.0,
        "the stream has windows waiting"
    );
    stream.hang_up();
    // The server notices (its next write fails), drops the stream and its ticket.
    let t0 = std::time::Instant::now();
    while server.metric("c3_client_disconnects_total").await < 1.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "the hang-up was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hold.release();
    server.wait_idle().await;
    // Cancelled, not finished: fewer tokens than its whole decode.
    let whole = rt
        .roundtrip(
            &long_document(),
            rt.prompt(),
            &rt.reference_generation(),
            None,
        )
        .unwrap();
    let all: usize = whole.windows.iter().map(|w| w.generated).sum();
    let generated = server.metric("c3_generated_tokens_total").await;
    assert!(
        generated < all as f64,
        "{generated} of {all} tokens: the stream ran to its end"
    );
    for _ in 0..3 {
        let (status, v) = server
            .post_json("/v1/roundtrip", &json!({"text": "after the hang-up"}))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    server.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_streams_finish_then_serve_returns() {
    let mut server = Server::start(2, 8, Default::default()).await;
    let doc = documents()[7].clone();
    let mut s = EventStream::open(
        server.addr,
        "/v1/roundtrip",
        &json!({"text": doc, "stream": true}),
    )
    .await;
    let first = s.next().await.unwrap();
    assert_eq!(first.event, "piece");
    server.stop();
    // The stream still runs to its summary.
    let mut events = vec![first];
    events.extend(s.collect().await);
    let (text, done) = joined(&events);
    assert_eq!(text, done["text"].as_str().unwrap());
    let task = std::mem::replace(&mut server.task, tokio::spawn(async { Ok(()) }));
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve returns once its connections are closed")
        .unwrap()
        .unwrap();
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}
