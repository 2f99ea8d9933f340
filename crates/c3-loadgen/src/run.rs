//! Running the concurrency levels: at each level, N client loops send streamed
//! roundtrips back to back, cycling over the documents, until the level's request
//! count or duration is reached; levels run one after the other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::client::Client;
use crate::report::{LevelReport, Samples};

/// When a level's measured phase ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// After this many requests in all (over all loops of the level).
    Requests(u64),
    /// No new request after this long; those running then still finish and count.
    Duration(Duration),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Concurrency levels, run in this order.
    pub concurrency: Vec<usize>,
    pub stop: Stop,
    /// Requests each loop sends before the level's measurement starts (not counted).
    pub warmup: u32,
    pub max_new_tokens: Option<u32>,
}

/// Progress callbacks (the binary draws a bar; the library draws nothing).
pub trait Observer: Send + Sync {
    fn warmup_started(&self, _concurrency: usize, _requests: u64) {}
    fn level_started(&self, _concurrency: usize, _stop: Stop) {}
    fn request_finished(&self, _ok: bool) {}
    fn level_finished(&self, _report: &LevelReport) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// Runs every level of `plan`. A `true` on `stop` (Ctrl-C) ends the run at once:
/// requests in flight are dropped, and the level under way is reported with what
/// had finished, marked `interrupted`, as the last one.
pub async fn run_levels(
    client: &Client,
    documents: Arc<[String]>,
    plan: &Plan,
    observer: Arc<dyn Observer>,
    stop: watch::Receiver<bool>,
) -> Vec<LevelReport> {
    let mut levels = Vec::new();
    for &concurrency in &plan.concurrency {
        let level = run_level(
            client,
            documents.clone(),
            concurrency,
            plan,
            observer.clone(),
            stop.clone(),
        )
        .await;
        observer.level_finished(&level);
        let interrupted = level.interrupted;
        levels.push(level);
        if interrupted {
            break;
        }
    }
    levels
}

/// Runs one level: warm-up (each loop sends `plan.warmup` requests; all loops
/// finish it before the clock starts), then the measured phase.
pub async fn run_level(
    client: &Client,
    documents: Arc<[String]>,
    concurrency: usize,
    plan: &Plan,
    observer: Arc<dyn Observer>,
    stop: watch::Receiver<bool>,
) -> LevelReport {
    assert!(concurrency > 0, "concurrency must be at least 1");
    assert!(!documents.is_empty(), "no documents");
    let n_docs = documents.len();

    if plan.warmup > 0 {
        observer.warmup_started(concurrency, u64::from(plan.warmup) * concurrency as u64);
        let mut set = JoinSet::new();
        for lane in 0..concurrency {
            let (client, docs) = (client.clone(), documents.clone());
            let (warmup, k) = (plan.warmup as usize, plan.max_new_tokens);
            set.spawn(async move {
                for i in 0..warmup {
                    let _ = client
                        .roundtrip(&docs[(lane + i * concurrency) % n_docs], k)
                        .await;
                }
            });
        }
        if !until_done_or_stopped(&mut set, stop.clone()).await {
            return Samples::default().into_report(concurrency, Duration::ZERO, true);
        }
    }

    observer.level_started(concurrency, plan.stop);
    let samples = Arc::new(Mutex::new(Samples::default()));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (client, docs) = (client.clone(), documents.clone());
        let (samples, next, observer) = (samples.clone(), next.clone(), observer.clone());
        let (rule, k) = (plan.stop, plan.max_new_tokens);
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let more = match rule {
                    Stop::Requests(n) => i < n,
                    Stop::Duration(d) => start.elapsed() < d,
                };
                if !more {
                    break;
                }
                let outcome = client
                    .roundtrip(&docs[(i % n_docs as u64) as usize], k)
                    .await;
                if let Err(f) = &outcome {
                    tracing::debug!(kind = %f.kind(), "request failed: {}", f.message());
                }
                let ok = outcome.is_ok();
                samples
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(outcome);
                observer.request_finished(ok);
            }
        });
    }
    let finished = until_done_or_stopped(&mut set, stop).await;
    let wall = start.elapsed();
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    samples.into_report(concurrency, wall, !finished)
}

/// Waits for every task of `set`; on a stop signal aborts them. True when all finished.
async fn until_done_or_stopped(set: &mut JoinSet<()>, mut stop: watch::Receiver<bool>) -> bool {
    let stopped = async {
        // A dropped sender means nobody can interrupt: wait for the tasks then.
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let all_done = async { while set.join_next().await.is_some() {} };
    let finished = tokio::select! {
        biased;
        () = stopped => false,
        () = all_done => true,
    };
    if !finished {
        set.abort_all();
    }
    finished
}
