//! The continuous-batching scheduler on the exported tiny fixture, both cache
//! contracts: requests arriving at different times, sharing a batch smaller than
//! their rows (so rows join at different positions and wait for slots), give the
//! same outputs as serial `C3Runtime::roundtrip` / `compress_documents` /
//! `decompress`; streamed tokens are the final outputs; a full queue refuses; a
//! cancelled request frees its rows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use c3_core::GenerationConfig;
use c3_export::{ExportOptions, KvCacheChoice};
use c3_runtime::{
    C3Runtime, Error, Event, Latents, Outcome, RuntimeOptions, Scheduler, SchedulerOptions, Task,
};

const WINDOW: usize = 24;

fn export(out: &Path, kv_cache: KvCacheChoice) -> Arc<C3Runtime> {
    let args = ExportOptions {
        kv_cache,
        ..ExportOptions::new(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny"),
            out.to_path_buf(),
        )
    };
    c3_export::run(&args).unwrap();
    Arc::new(C3Runtime::load(out, RuntimeOptions::default()).unwrap())
}

fn cfg(rt: &C3Runtime) -> GenerationConfig {
    GenerationConfig {
        no_repeat_ngram_size: 3,
        ..rt.reference_generation()
    }
}

/// Documents of 1 to 4 windows, short ones padded.
fn documents() -> Vec<String> {
    let base = "Continuous batching lets rows join a running batch at any step and leave it \
                as soon as they end, so one loaded model serves many callers at once.";
    (0..9)
        .map(|i| {
            let words: Vec<&str> = base.split(' ').collect();
            let n = 3 + (i * 7) % words.len();
            format!("{} {}", i, words[..n].join(" "))
        })
        .collect()
}

fn scheduler(rt: &Arc<C3Runtime>, max_batch: usize) -> Scheduler {
    Scheduler::start(
        rt.clone(),
        SchedulerOptions {
            max_batch,
            max_queue: 64,
            window: Some(WINDOW),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Serial reference outputs, then the same documents from 9 threads arriving at
/// staggered times through a batch of 5 rows; streamed tokens match the windows.
fn concurrent_equals_serial(kv: KvCacheChoice) {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), kv);
    let cfg = cfg(&rt);
    let docs = documents();
    let serial: Vec<_> = docs
        .iter()
        .map(|d| rt.roundtrip(d, &cfg, Some(WINDOW), None).unwrap())
        .collect();
    assert!(
        serial.iter().any(|r| r.windows.len() > 2),
        "a long document"
    );
    let sched = Arc::new(scheduler(&rt, 5));
    let handles: Vec<_> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (sched, rt, cfg, d) = (sched.clone(), rt.clone(), cfg.clone(), d.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(3 * i as u64));
                let (tx, rx) = mpsc::channel();
                let task = Task::Roundtrip {
                    text_ids: rt.document_ids(&d).unwrap(),
                    cfg,
                    limit: None,
                };
                let _ticket = sched
                    .submit(task, Box::new(move |e| tx.send(e).is_ok()))
                    .unwrap();
                let mut streamed: Vec<Vec<u32>> = Vec::new();
                loop {
                    match rx.recv().unwrap() {
                        Event::Token { window, id } => {
                            if streamed.len() <= window {
                                streamed.resize(window + 1, Vec::new());
                            }
                            streamed[window].push(id);
                        }
                        Event::WindowDone { window, generated } => {
                            assert_eq!(
                                streamed.get(window).cloned().unwrap_or_default(),
                                generated.ids
                            );
                        }
                        Event::Done(Outcome::Roundtrip(r)) => return r,
                        Event::Done(_) => panic!("wrong outcome"),
                        Event::Failed(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for (h, want) in handles.into_iter().zip(&serial) {
        let got = h.join().unwrap();
        assert_eq!(got.generation, want.generation);
        assert_eq!(got.text, want.text);
        assert_eq!(got.windows, want.windows);
    }
    let s = sched.stats();
    assert_eq!((s.queued, s.running), (0, 0), "{s:?}");
    assert_eq!(s.finished, docs.len() as u64);
}

#[test]
fn concurrent_requests_equal_serial_shared_buffer() {
    concurrent_equals_serial(KvCacheChoice::SharedBuffer);
}

#[test]
fn concurrent_requests_equal_serial_concat() {
    concurrent_equals_serial(KvCacheChoice::Concat);
}

#[test]
fn compress_and_decompress_equal_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), KvCacheChoice::SharedBuffer);
    let cfg = cfg(&rt);
    let docs: Vec<Vec<u32>> = documents()
        .iter()
        .map(|d| rt.document_ids(d).unwrap())
        .collect();
    let want = rt.compress_documents(&docs, Some(WINDOW)).unwrap();
    let sched = scheduler(&rt, 4);
    let Outcome::Compressed(got) = sched.run(Task::Compress { docs: docs.clone() }).unwrap() else {
        panic!("wrong outcome")
    };
    assert_eq!(got, want);
    let (want_docs, want_reports) = rt.decompress(&want, &cfg, Some(9)).unwrap();
    let Outcome::Decompressed { docs: d, reports } = sched
        .run(Task::Decompress {
            compressed: got,
            cfg,
            limit: Some(9),
        })
        .unwrap()
    else {
        panic!("wrong outcome")
    };
    assert_eq!(d, want_docs);
    assert_eq!(reports, want_reports);
}

#[test]
fn bad_tasks_are_refused_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), KvCacheChoice::SharedBuffer);
    let sched = scheduler(&rt, 2);
    let err = sched.run(Task::Compress { docs: vec![] }).unwrap_err();
    assert_eq!(err.to_string(), "no documents");
    let err = sched
        .run(Task::Compress {
            docs: vec![vec![1], vec![]],
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "document 1 is empty");
    assert!(err.is_client_error());
    let ids = rt.document_ids("one two three").unwrap();
    let Outcome::Compressed(mut c) = sched.run(Task::Compress { docs: vec![ids] }).unwrap() else {
        panic!()
    };
    let l = &c.latents[0];
    let (n, dim) = (l.n(), l.dim() + 1);
    c.latents[0] = Latents::new(n, dim, vec![0.5; n * dim], l.text_tokens()).unwrap();
    let err = sched
        .run(Task::Decompress {
            compressed: c,
            cfg: cfg(&rt),
            limit: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("this export takes"), "{err}");
    assert_eq!(sched.stats().queued, 0);
}

/// A sink that blocks the scheduler thread holds the queue still: the test controls
/// exactly how many requests wait.
#[test]
fn a_full_queue_refuses_and_a_cancelled_request_frees_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), KvCacheChoice::SharedBuffer);
    let sched = Scheduler::start(
        rt.clone(),
        SchedulerOptions {
            max_batch: 2,
            max_queue: 1,
            window: Some(WINDOW),
            ..Default::default()
        },
    )
    .unwrap();
    let long = documents().pop().unwrap();
    let task = || Task::Roundtrip {
        text_ids: rt.document_ids(&long).unwrap(),
        cfg: cfg(&rt),
        limit: None,
    };
    let gate = Arc::new(Barrier::new(2));
    let first = {
        let (gate, blocked) = (gate.clone(), Arc::new(AtomicBool::new(false)));
        sched
            .submit(
                task(),
                Box::new(move |e| {
                    if matches!(e, Event::Token { .. }) && !blocked.swap(true, Ordering::SeqCst) {
                        gate.wait(); // the scheduler is here: request 1 is running
                        gate.wait(); // released by the test
                    }
                    true
                }),
            )
            .unwrap()
    };
    gate.wait();
    let second = sched.submit(task(), Box::new(|_| true)).unwrap();
    let err = sched.submit(task(), Box::new(|_| true)).unwrap_err();
    assert!(matches!(err, Error::QueueFull { max_queue: 1 }), "{err}");
    assert_eq!(
        err.to_string(),
        "the queue is full (1 requests waiting); retry later"
    );
    // Both running requests go away mid-decode; their rows must come back.
    drop(first);
    drop(second);
    gate.wait();
    let t0 = Instant::now();
    while {
        let s = sched.stats();
        s.finished < 2 || s.running + s.queued > 0
    } {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{:?}",
            sched.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let Outcome::Roundtrip(r) = sched.run(task()).unwrap() else {
        panic!()
    };
    let want = rt.roundtrip(&long, &cfg(&rt), Some(WINDOW), None).unwrap();
    assert_eq!((r.generation, r.text), (want.generation, want.text));
}
