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

use c3_core::{Cascade, GenerationConfig};
use c3_export::{ExportOptions, KvCacheChoice};
use c3_runtime::{
    C3Runtime, CompressTask, DecompressTask, Error, Event, Latents, RoundtripTask, RuntimeOptions,
    Scheduler, SchedulerOptions,
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
    let options = RuntimeOptions {
        window: Some(WINDOW),
        ..RuntimeOptions::default()
    };
    Arc::new(C3Runtime::load(out, options).unwrap())
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
        .map(|d| rt.roundtrip(d, rt.prompt(), &cfg, None).unwrap())
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
                let task = RoundtripTask {
                    text_ids: rt.document_ids(&d).unwrap(),
                    prompt: None,
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
                        Event::Done(r) => return r,
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
    let want = rt.compress_documents(&docs).unwrap();
    let sched = scheduler(&rt, 4);
    let got = sched.run(CompressTask { docs: docs.clone() }).unwrap();
    assert_eq!(got, want);
    let serial = rt.decompress(&want, rt.prompt(), &cfg, Some(9)).unwrap();
    let back = sched
        .run(DecompressTask {
            compressed: got,
            prompt: None,
            cfg,
            limit: Some(9),
        })
        .unwrap();
    assert_eq!(back, serial);
}

#[test]
fn bad_tasks_are_refused_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), KvCacheChoice::SharedBuffer);
    let sched = scheduler(&rt, 2);
    let err = sched.run(CompressTask { docs: vec![] }).unwrap_err();
    assert_eq!(err.to_string(), "no documents");
    let err = sched
        .run(CompressTask {
            docs: vec![vec![1], vec![]],
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "document 1 is empty");
    assert!(err.is_client_error());
    let ids = rt.document_ids("one two three").unwrap();
    let mut c = sched.run(CompressTask { docs: vec![ids] }).unwrap();
    let l = &c.latents[0];
    let (n, dim) = (l.n(), l.dim() + 1);
    c.latents[0] = Latents::new(n, dim, vec![0.5; n * dim], l.text_tokens()).unwrap();
    let err = sched
        .run(DecompressTask {
            compressed: c,
            prompt: None,
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
            ..Default::default()
        },
    )
    .unwrap();
    let long = documents().pop().unwrap();
    let task = || RoundtripTask {
        text_ids: rt.document_ids(&long).unwrap(),
        prompt: None,
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
    let r = sched.run(task()).unwrap();
    let want = rt.roundtrip(&long, rt.prompt(), &cfg(&rt), None).unwrap();
    assert_eq!((r.generation, r.text), (want.generation, want.text));
}

/// Holds the scheduler thread inside a sink until released: requests submitted
/// meanwhile are all taken in at the next step, so they share an encoder batch.
struct Gate {
    gate: Arc<Barrier>,
    _ticket: c3_runtime::Ticket,
}

impl Gate {
    fn hold(sched: &Scheduler, rt: &C3Runtime) -> Gate {
        let gate = Arc::new(Barrier::new(2));
        let (g, blocked) = (gate.clone(), Arc::new(AtomicBool::new(false)));
        let task = RoundtripTask {
            text_ids: rt.document_ids(&documents()[8]).unwrap(),
            prompt: None,
            cfg: cfg(rt),
            limit: Some(4),
        };
        let ticket = sched
            .submit(
                task,
                Box::new(move |e| {
                    if matches!(e, Event::Token { .. }) && !blocked.swap(true, Ordering::SeqCst) {
                        g.wait(); // the scheduler is held here
                        g.wait(); // until released
                    }
                    true
                }),
            )
            .unwrap();
        gate.wait();
        Gate {
            gate,
            _ticket: ticket,
        }
    }

    fn release(self) {
        self.gate.wait();
    }
}

/// A request with a token id outside the vocabulary, submitted with good ones that
/// share its encoder batch: it alone fails, as an input error; the others get the
/// outputs they get alone. Both cache contracts, compress and round trip.
fn bad_input_fails_alone(kv: KvCacheChoice) {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), kv);
    let sched = Scheduler::start(
        rt.clone(),
        SchedulerOptions {
            max_batch: 4,
            admit_per_step: 8,
            ..Default::default()
        },
    )
    .unwrap();
    let good: Vec<Vec<u32>> = documents()[..3]
        .iter()
        .map(|d| rt.document_ids(d).unwrap())
        .collect();
    let mut bad = good[1].clone();
    bad[2] = rt.tokenizer.vocab_size() as u32 + 7;
    let serial: Vec<_> = good
        .iter()
        .map(|ids| rt.compress_documents(std::slice::from_ref(ids)).unwrap())
        .collect();
    let want_text: Vec<_> = documents()[..3]
        .iter()
        .map(|d| rt.roundtrip(d, rt.prompt(), &cfg(&rt), None).unwrap())
        .collect();

    let gate = Gate::hold(&sched, &rt);
    let (tx, rx) = mpsc::channel();
    let mut tickets = Vec::new();
    let inputs = [good[0].clone(), bad.clone(), good[2].clone()];
    for (i, ids) in inputs.iter().enumerate() {
        let tx = tx.clone();
        let task = CompressTask {
            docs: vec![ids.clone()],
        };
        let sink = Box::new(move |e: Event<c3_runtime::Compressed>| match e {
            Event::Done(c) => tx.send((i, Ok(c))).is_ok(),
            Event::Failed(e) => tx.send((i, Err(e))).is_ok(),
            _ => true,
        });
        tickets.push(sched.submit(task, sink).unwrap());
    }
    let (rtx, rrx) = mpsc::channel();
    for (i, ids) in inputs.iter().enumerate() {
        let rtx = rtx.clone();
        let task = RoundtripTask {
            text_ids: ids.clone(),
            prompt: None,
            cfg: cfg(&rt),
            limit: None,
        };
        let sink = Box::new(move |e: Event<c3_core::Reconstruction>| match e {
            Event::Done(r) => rtx.send((i, Ok(r))).is_ok(),
            Event::Failed(e) => rtx.send((i, Err(e))).is_ok(),
            _ => true,
        });
        tickets.push(sched.submit(task, sink).unwrap());
    }
    gate.release();
    let mut compressed: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
    compressed.sort_by_key(|r| r.0);
    let mut roundtrips: Vec<_> = (0..3).map(|_| rrx.recv().unwrap()).collect();
    roundtrips.sort_by_key(|r| r.0);
    for (i, got) in compressed {
        match (i, got) {
            (1, Err(e)) => {
                assert!(e.is_client_error(), "{e}");
                assert!(e.to_string().contains("outside the tokenizer"), "{e}");
            }
            (1, Ok(_)) => panic!("the bad document was compressed"),
            (i, got) => assert_eq!(got.unwrap(), serial[i], "document {i}"),
        }
    }
    for (i, got) in roundtrips {
        match (i, got) {
            (1, Err(e)) => assert!(e.is_client_error(), "{e}"),
            (1, Ok(_)) => panic!("the bad round trip ran"),
            (i, got) => {
                let got = got.unwrap();
                assert_eq!(got.generation, want_text[i].generation, "round trip {i}");
            }
        }
    }
    let s = sched.stats();
    assert_eq!((s.queued, s.running), (0, 0), "{s:?}");
}

#[test]
fn a_bad_input_fails_alone_shared_buffer() {
    bad_input_fails_alone(KvCacheChoice::SharedBuffer);
}

#[test]
fn a_bad_input_fails_alone_concat() {
    bad_input_fails_alone(KvCacheChoice::Concat);
}

/// A request's own prompt reaches the decoder: its outputs are those of a serial
/// decode after exactly that prompt's ids (the export's template with the task
/// replaced), they differ from the default prompt's, and requests with different
/// prompts share the batch (both cache contracts; concat rows with different
/// prompts go to different cohorts).
fn per_request_prompt(kv: KvCacheChoice) {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), kv);
    let sched = Arc::new(scheduler(&rt, 4));
    let task_text = "Summarize the text in one line: ";
    let prompt = Arc::new(rt.prompt_for(Some(task_text)).unwrap());
    let want_ids = c3_core::DecoderPrompt::build(
        &rt.tokenizer,
        rt.n_latents(),
        &c3_core::PromptTemplate::default()
            .with_task(task_text)
            .unwrap(),
    )
    .unwrap()
    .ids;
    assert_eq!(prompt.ids, want_ids);
    assert_ne!(prompt.ids, rt.prompt().ids);
    let docs = documents();
    let mut differ = false;
    let handles: Vec<_> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (sched, rt, d) = (sched.clone(), rt.clone(), d.clone());
            let p = (i % 2 == 0).then(|| prompt.clone());
            std::thread::spawn(move || {
                let task = RoundtripTask {
                    text_ids: rt.document_ids(&d).unwrap(),
                    prompt: p.clone(),
                    cfg: cfg(&rt),
                    limit: Some(12),
                };
                let got = sched.run(task).unwrap();
                let used = p.as_deref().unwrap_or(rt.prompt()).clone();
                let want = rt.roundtrip(&d, &used, &cfg(&rt), Some(12)).unwrap();
                let default = rt.roundtrip(&d, rt.prompt(), &cfg(&rt), Some(12)).unwrap();
                assert_eq!(got.generation, want.generation, "document {i}");
                p.is_some() && got.generation.ids != default.generation.ids
            })
        })
        .collect();
    for h in handles {
        differ |= h.join().unwrap();
    }
    assert!(differ, "the prompt changed no output");
    // A prompt longer than the rows' room is refused at submit, as the caller's fault.
    let long = Arc::new(rt.prompt_for(Some(&"word ".repeat(200))).unwrap());
    let err = sched
        .run(RoundtripTask {
            text_ids: rt.document_ids(&docs[0]).unwrap(),
            prompt: Some(long),
            cfg: cfg(&rt),
            limit: None,
        })
        .unwrap_err();
    assert!(err.is_client_error(), "{err}");
}

#[test]
fn a_request_prompt_reaches_the_decoder_shared_buffer() {
    per_request_prompt(KvCacheChoice::SharedBuffer);
}

#[test]
fn a_request_prompt_reaches_the_decoder_concat() {
    per_request_prompt(KvCacheChoice::Concat);
}

/// An export made with another prompt (`c3 export --prompt`) is served with it:
/// the runtime reads the manifest's template, not the default.
#[test]
fn an_export_with_its_own_prompt_is_served_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let task_text = "Answer the question about the text: ";
    let args = ExportOptions {
        prompt: Some(task_text.into()),
        ..ExportOptions::new(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny"),
            out.clone(),
        )
    };
    c3_export::run(&args).unwrap();
    let rt = Arc::new(C3Runtime::load(&out, RuntimeOptions::default()).unwrap());
    assert_eq!(rt.template().task, task_text);
    assert_eq!(rt.prompt().ids, rt.manifest.prompt.ids);
    let default = c3_core::DecoderPrompt::build(
        &rt.tokenizer,
        rt.n_latents(),
        &c3_core::PromptTemplate::default(),
    )
    .unwrap();
    assert_ne!(rt.prompt().ids, default.ids);
    let sched = scheduler(&rt, 2);
    let d = &documents()[3];
    let got = sched
        .run(RoundtripTask {
            text_ids: rt.document_ids(d).unwrap(),
            prompt: None,
            cfg: cfg(&rt),
            limit: Some(10),
        })
        .unwrap();
    let want = rt.roundtrip(d, rt.prompt(), &cfg(&rt), Some(10)).unwrap();
    let other = rt.roundtrip(d, &default, &cfg(&rt), Some(10)).unwrap();
    assert_eq!(got.generation, want.generation);
    assert_ne!(got.generation.ids, other.generation.ids);
}

/// The default prompt's ids are the release prompt's, byte for byte: the fixture's
/// tokenizer (byte-level) spells the reference template exactly.
#[test]
fn the_default_prompt_is_the_release_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"), KvCacheChoice::SharedBuffer);
    let t = c3_core::PromptTemplate::default();
    assert_eq!(
        t.render(),
        "<|im_start|>system\nYou should follow the instructions carefully and explain your answers in detail.<|im_end|><|im_start|>user\n<img>{latents}</img>\nRepeat the text: <|im_end|><|im_start|>assistant\n"
    );
    assert_eq!(rt.manifest.prompt.template, t.render());
    assert_eq!(rt.template(), &t);
    let sp = rt.tokenizer.specials();
    let text = |s: &str| rt.tokenizer.encode(s).unwrap();
    let mut want = vec![sp.im_start];
    want.extend(text(
        "system\nYou should follow the instructions carefully and explain your answers in detail.",
    ));
    want.extend([sp.im_end, sp.im_start]);
    want.extend(text("user\n"));
    want.push(sp.img_start);
    want.extend(std::iter::repeat_n(sp.img_pad, rt.n_latents()));
    want.push(sp.img_end);
    want.extend(text("\nRepeat the text: "));
    want.extend([sp.im_end, sp.im_start]);
    want.extend(text("assistant\n"));
    assert_eq!(rt.prompt().ids, want);
}
