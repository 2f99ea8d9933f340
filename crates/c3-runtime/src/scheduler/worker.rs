//! The scheduler thread: receive, encode, admit, step, finish; again.
//!
//! Every loop turn is one step boundary. Per turn: new jobs are taken in; cancelled
//! ones leave (freeing their rows); one encoder batch of waiting windows runs (so a
//! long document's encoding interleaves with others' decoding); waiting rows fill
//! free slots (their prefill runs); then every running row advances one token.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use c3_core::window::{document_finish, join};
use c3_core::{Generated, GenerationConfig, Reconstruction, RowGreedy, Window};

use super::{Event, Job, Outcome, SchedulerOptions, Shared, Task};
use crate::Latents;
use crate::decode::batch::Batch;
use crate::error::{Error, Result};
use crate::model::{C3Runtime, Compressed};

/// Positions a row may need: the prompt and the largest window's new tokens.
fn capacity(rt: &C3Runtime, options: &SchedulerOptions) -> Result<usize> {
    let m = &rt.manifest;
    let plan = m.window_plan(options.window)?;
    let full = Window {
        doc: 0,
        start: 0,
        tokens: plan.window,
        skip: 0,
        pad: 0,
    };
    Ok((m.prompt.ids.len() + full.max_new_tokens(None)).min(m.max_context))
}

/// Refuses a task the scheduler could not run, before it is queued.
pub(super) fn check_task(rt: &C3Runtime, options: &SchedulerOptions, task: &Task) -> Result<()> {
    let m = &rt.manifest;
    let cap = capacity(rt, options)?;
    let room = cap - m.prompt.ids.len().min(cap);
    let check_docs = |docs: &[Vec<u32>]| -> Result<()> {
        if docs.is_empty() {
            return Err(Error::Input("no documents".into()));
        }
        for (i, d) in docs.iter().enumerate() {
            if d.is_empty() {
                return Err(Error::Input(format!("document {i} is empty")));
            }
        }
        Ok(())
    };
    match task {
        Task::Roundtrip { text_ids, .. } => check_docs(std::slice::from_ref(text_ids)),
        Task::Compress { docs } => check_docs(docs),
        Task::Decompress {
            compressed, limit, ..
        } => {
            let c = compressed;
            if c.windows.is_empty() || c.windows.len() != c.latents.len() {
                return Err(Error::Input(format!(
                    "{} windows but {} latent sets",
                    c.windows.len(),
                    c.latents.len()
                )));
            }
            for (i, (w, l)) in c.windows.iter().zip(&c.latents).enumerate() {
                if l.n() != m.n_latents || l.dim() != m.hidden {
                    return Err(Error::Input(format!(
                        "window {i} has latents [{}, {}], this export takes [{}, {}]",
                        l.n(),
                        l.dim(),
                        m.n_latents,
                        m.hidden
                    )));
                }
                if w.doc >= c.doc_tokens.len() {
                    return Err(Error::Input(format!(
                        "window {i} belongs to document {} of {}",
                        w.doc,
                        c.doc_tokens.len()
                    )));
                }
                if w.max_new_tokens(*limit) > room {
                    return Err(Error::Input(format!(
                        "window {i} may generate {} tokens, over this server's {room} per window",
                        w.max_new_tokens(*limit)
                    )));
                }
            }
            Ok(())
        }
    }
}

/// A request in the worker.
struct Req {
    job: Job,
    windows: Vec<Window>,
    /// Encoder inputs not encoded yet (taken when encoded).
    inputs: Vec<Option<Vec<u32>>>,
    latents: Vec<Option<Latents>>,
    gens: Vec<Option<Generated>>,
    doc_tokens: Vec<usize>,
    /// Windows not yet admitted to the batch; at 0 the request leaves the queue.
    unadmitted: usize,
    /// Windows not yet decoded (or encoded, for a compress request).
    left: usize,
    in_queue: bool,
    started: Instant,
    encode_seconds: Option<f64>,
    decode_started: Option<Instant>,
}

impl Req {
    fn new(rt: &C3Runtime, options: &SchedulerOptions, job: Job) -> Result<Req, Box<(Job, Error)>> {
        let plan = match rt.manifest.window_plan(options.window) {
            Ok(p) => p,
            Err(e) => return Err(Box::new((job, e.into()))),
        };
        let (windows, inputs, latents, doc_tokens) = match &job.task {
            Task::Roundtrip { text_ids, .. } => {
                let (w, i) = plan.split_inputs(std::slice::from_ref(text_ids));
                (w, i, Vec::new(), vec![text_ids.len()])
            }
            Task::Compress { docs } => {
                let (w, i) = plan.split_inputs(docs);
                (w, i, Vec::new(), docs.iter().map(Vec::len).collect())
            }
            Task::Decompress { compressed, .. } => (
                compressed.windows.clone(),
                Vec::new(),
                compressed.latents.clone(),
                compressed.doc_tokens.clone(),
            ),
        };
        let n = windows.len();
        let decodes = !matches!(job.task, Task::Compress { .. });
        Ok(Req {
            windows,
            inputs: if latents.is_empty() {
                inputs.into_iter().map(Some).collect()
            } else {
                vec![None; n]
            },
            latents: if latents.is_empty() {
                vec![None; n]
            } else {
                latents.into_iter().map(Some).collect()
            },
            gens: vec![None; n],
            doc_tokens,
            unadmitted: if decodes { n } else { 0 },
            left: n,
            in_queue: true,
            started: Instant::now(),
            encode_seconds: None,
            decode_started: None,
            job,
        })
    }

    fn generation(&self) -> Option<(&GenerationConfig, Option<usize>)> {
        match &self.job.task {
            Task::Roundtrip { cfg, limit, .. } | Task::Decompress { cfg, limit, .. } => {
                Some((cfg, *limit))
            }
            Task::Compress { .. } => None,
        }
    }

    fn emit(&mut self, e: Event) {
        if !(self.job.sink)(e) {
            self.job.cancel.store(true, Ordering::Relaxed);
        }
    }
}

/// A running row: window `window` of request `req` (an id).
struct Row {
    req: u64,
    window: usize,
    greedy: RowGreedy,
    next: Option<u32>,
}

struct Worker<'m> {
    rt: &'m C3Runtime,
    options: &'m SchedulerOptions,
    shared: &'m Shared,
    batch: Batch<'m>,
    reqs: Vec<(u64, Req)>,
    next_id: u64,
    /// Windows waiting for the encoder, then for a slot, as (window index, request
    /// id): every request's first window before anyone's second, each in arrival
    /// order. The first window is what a client waits on for its first token, so
    /// under load time to first token stays near one step, not behind other
    /// documents' later windows; later windows cannot starve for long, since a
    /// request stays in the bounded queue until its last window is admitted.
    to_encode: BTreeSet<(usize, u64)>,
    to_admit: BTreeSet<(usize, u64)>,
    rows: Vec<Option<Row>>,
}

pub(super) fn run(
    rt: &C3Runtime,
    options: &SchedulerOptions,
    shared: &Shared,
    rx: Receiver<Job>,
    ready: Sender<Result<()>>,
) {
    let start = capacity(rt, options)
        .and_then(|cap| Batch::new(rt, options.max_batch, cap, rt.options.reuse_prompt_prefix));
    let batch = match start {
        Ok(b) => {
            let _ = ready.send(Ok(()));
            b
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut w = Worker {
        rt,
        options,
        shared,
        batch,
        reqs: Vec::new(),
        next_id: 0,
        to_encode: BTreeSet::new(),
        to_admit: BTreeSet::new(),
        rows: (0..options.max_batch).map(|_| None).collect(),
    };
    let mut open = true;
    while open || !w.reqs.is_empty() {
        open = w.receive(&rx, open);
        w.sweep_cancelled();
        w.encode_some();
        w.admit();
        w.step();
        let running = w.rows.iter().filter(|r| r.is_some()).count();
        shared.running.store(running, Ordering::Relaxed);
    }
}

impl<'m> Worker<'m> {
    /// Takes new jobs; blocks when there is nothing to do. Returns whether the
    /// channel is still open.
    fn receive(&mut self, rx: &Receiver<Job>, open: bool) -> bool {
        if !open {
            return false;
        }
        let mut first = if self.reqs.is_empty() {
            // Idle: wait, waking now and then so cancellation flags are seen.
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(j) => Some(j),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        } else {
            None
        };
        loop {
            let job = match first.take() {
                Some(j) => j,
                None => match rx.try_recv() {
                    Ok(j) => j,
                    Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
                },
            };
            self.add(job);
        }
    }

    fn add(&mut self, job: Job) {
        let id = self.next_id;
        self.next_id += 1;
        // Req::new fails only where check_task (at submit) would have.
        let req = match Req::new(self.rt, self.options, job) {
            Ok(r) => r,
            Err(failed) => {
                let (mut job, e) = *failed;
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                self.shared.finished.fetch_add(1, Ordering::Relaxed);
                let _ = (job.sink)(Event::Failed(e));
                return;
            }
        };
        for (i, input) in req.inputs.iter().enumerate() {
            if input.is_some() {
                self.to_encode.insert((i, id));
            } else if req.unadmitted > 0 {
                self.to_admit.insert((i, id));
            }
        }
        self.reqs.push((id, req));
    }

    fn req(&mut self, id: u64) -> Option<&mut Req> {
        self.reqs.iter_mut().find(|r| r.0 == id).map(|r| &mut r.1)
    }

    /// Ends request `id`: frees its rows, leaves the queue, sends `last`.
    fn finish(&mut self, id: u64, last: Option<Event>) {
        for s in 0..self.rows.len() {
            if self.rows[s].as_ref().is_some_and(|r| r.req == id) {
                self.rows[s] = None;
                self.batch.release(s);
            }
        }
        self.to_encode.retain(|e| e.1 != id);
        self.to_admit.retain(|e| e.1 != id);
        // Gauges are current before the caller hears the request ended.
        self.publish_running();
        let Some(pos) = self.reqs.iter().position(|r| r.0 == id) else {
            return;
        };
        let (_, mut req) = self.reqs.swap_remove(pos);
        if req.in_queue {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        self.shared.finished.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = last {
            req.emit(e);
        }
    }

    fn publish_running(&self) {
        let running = self.rows.iter().flatten().count();
        self.shared.running.store(running, Ordering::Relaxed);
    }

    fn sweep_cancelled(&mut self) {
        let gone: Vec<u64> = self
            .reqs
            .iter()
            .filter(|r| r.1.job.cancel.load(Ordering::Relaxed))
            .map(|r| r.0)
            .collect();
        for id in gone {
            self.finish(id, None);
        }
    }

    /// One encoder batch of waiting windows, in arrival order.
    fn encode_some(&mut self) {
        let budget = self.rt.options.batch_size.min(self.options.admit_per_step);
        let n = budget.max(1).min(self.to_encode.len());
        if n == 0 {
            return;
        }
        let picked: Vec<(u64, usize)> = (0..n)
            .filter_map(|_| self.to_encode.pop_first())
            .map(|(i, id)| (id, i))
            .collect();
        let inputs: Vec<Vec<u32>> = picked
            .iter()
            .map(|&(id, i)| {
                self.req(id)
                    .and_then(|r| r.inputs[i].take())
                    .unwrap_or_default()
            })
            .collect();
        match self.rt.compress(&inputs) {
            Ok(latents) => {
                for ((id, i), lat) in picked.into_iter().zip(latents) {
                    self.encoded(id, i, lat);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let mut ids: Vec<u64> = picked.iter().map(|p| p.0).collect();
                ids.dedup();
                for id in ids {
                    self.finish(id, Some(Event::Failed(Error::Internal(msg.clone()))));
                }
            }
        }
    }

    fn encoded(&mut self, id: u64, i: usize, lat: Latents) {
        let Some(req) = self.req(id) else { return };
        req.latents[i] = Some(lat);
        let all = req.latents.iter().all(Option::is_some);
        if all {
            req.encode_seconds = Some(req.started.elapsed().as_secs_f64());
        }
        if req.unadmitted > 0 {
            self.to_admit.insert((i, id));
            return;
        }
        // A compress request ends when its last window is encoded.
        req.left -= 1;
        if req.left == 0 {
            let compressed = Compressed {
                windows: req.windows.clone(),
                latents: req.latents.iter_mut().filter_map(Option::take).collect(),
                doc_tokens: req.doc_tokens.clone(),
            };
            self.finish(id, Some(Event::Done(Outcome::Compressed(compressed))));
        }
    }

    /// Fills free slots with waiting rows and runs their prefill.
    fn admit(&mut self) {
        let free: Vec<usize> = (0..self.rows.len())
            .filter(|&s| self.rows[s].is_none())
            .collect();
        let take = free
            .len()
            .min(self.to_admit.len())
            .min(self.options.admit_per_step);
        if take == 0 {
            return;
        }
        let waiting: Vec<(u64, usize)> = (0..take)
            .filter_map(|_| self.to_admit.pop_first())
            .map(|(i, id)| (id, i))
            .collect();
        let plen = &self.rt.manifest.prompt.ids;
        let context = self.rt.manifest.max_context;
        let mut lats: Vec<(usize, Latents)> = Vec::with_capacity(take);
        for (&slot, &(id, i)) in free.iter().zip(&waiting) {
            let shared = self.shared;
            let Some(req) = self.reqs.iter_mut().find(|r| r.0 == id).map(|r| &mut r.1) else {
                continue;
            };
            // Windows wait for a slot only once encoded (or given, for decompress).
            let (Some((cfg, limit)), Some(lat)) = (req.generation(), req.latents[i].clone()) else {
                continue;
            };
            let mut cfg = cfg.clone();
            cfg.max_new_tokens = req.windows[i].max_new_tokens(limit);
            let greedy = RowGreedy::new(plen, context, &cfg);
            req.unadmitted -= 1;
            if req.unadmitted == 0 && req.in_queue {
                req.in_queue = false;
                shared.queued.fetch_sub(1, Ordering::AcqRel);
            }
            req.decode_started.get_or_insert_with(Instant::now);
            self.rows[slot] = Some(Row {
                req: id,
                window: i,
                greedy,
                next: None,
            });
            lats.push((slot, lat));
        }
        let refs: Vec<(usize, &Latents)> = lats.iter().map(|(s, l)| (*s, l)).collect();
        let (rows, mut picked) = (&mut self.rows, Vec::new());
        let res = self
            .batch
            .prefill(&refs, &mut |s, l| picked.push(choose(rows, s, l)));
        self.publish_running();
        self.after_run(res, picked);
    }

    /// Advances every running row by one token.
    fn step(&mut self) {
        let feed: Vec<(usize, u32)> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(s, r)| r.as_ref().and_then(|r| r.next).map(|t| (s, t)))
            .collect();
        if feed.is_empty() {
            return;
        }
        let (rows, mut picked) = (&mut self.rows, Vec::new());
        let res = self
            .batch
            .step(self.rt, &feed, &mut |s, l| picked.push(choose(rows, s, l)));
        self.after_run(res, picked);
    }

    /// Applies the logits a run gave each slot: greedy choice, events, finished rows.
    fn after_run(&mut self, res: Result<()>, picked: Vec<(usize, Option<u32>)>) {
        if let Err(e) = res {
            // The cache may be half written: every request with a row in it fails.
            let msg = e.to_string();
            let ids: Vec<u64> = self.rows.iter().flatten().map(|r| r.req).collect();
            self.batch.reset();
            for id in ids {
                self.finish(id, Some(Event::Failed(Error::Internal(msg.clone()))));
            }
            return;
        }
        for (s, tok) in picked {
            let Some(row) = self.rows[s].as_mut() else {
                continue;
            };
            row.next = tok;
            let (id, window) = (row.req, row.window);
            if let Some(t) = tok {
                self.shared.generated_tokens.fetch_add(1, Ordering::Relaxed);
                if let Some(req) = self.req(id) {
                    req.emit(Event::Token { window, id: t });
                }
            }
            if self.rows[s].as_ref().is_some_and(|r| r.greedy.is_done()) {
                self.row_done(s);
            }
        }
    }

    fn row_done(&mut self, s: usize) {
        let Some(row) = self.rows[s].take() else {
            return;
        };
        self.batch.release(s);
        let generated = row.greedy.into_result();
        let Some(req) = self.req(row.req) else { return };
        req.emit(Event::WindowDone {
            window: row.window,
            generated: generated.clone(),
        });
        req.gens[row.window] = Some(generated);
        req.left -= 1;
        if req.left == 0 {
            let last = self.outcome(row.req);
            self.finish(row.req, Some(last));
        }
    }

    /// The finished request's result.
    fn outcome(&mut self, id: u64) -> Event {
        let tokenizer = &self.rt.tokenizer;
        let Some(req) = self.req(id) else {
            return Event::Failed(Error::Internal("request vanished".into()));
        };
        let gens: Vec<Generated> = req.gens.iter_mut().filter_map(Option::take).collect();
        let res = join(&req.windows, &gens, req.doc_tokens.len()).map_err(Error::from);
        let (mut docs, reports) = match res {
            Ok(v) => v,
            Err(e) => return Event::Failed(e),
        };
        match &req.job.task {
            Task::Roundtrip { text_ids, .. } => {
                let ids = docs.pop().unwrap_or_default();
                let text = match tokenizer.decode(&ids) {
                    Ok(t) => t.trim().to_string(),
                    Err(e) => return Event::Failed(e.into()),
                };
                let encode_seconds = req.encode_seconds.unwrap_or(0.0);
                let decode_seconds = req
                    .decode_started
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
                Event::Done(Outcome::Roundtrip(Reconstruction {
                    text_ids: text_ids.clone(),
                    generation: Generated {
                        ids,
                        finish: document_finish(&reports),
                    },
                    text,
                    encode_seconds,
                    decode_seconds,
                    windows: reports,
                }))
            }
            _ => Event::Done(Outcome::Decompressed { docs, reports }),
        }
    }
}

/// Greedy choice for slot `s` from its logits, inside the run's callback (the
/// logits are borrowed from the run's output: nothing is copied per row).
fn choose(rows: &mut [Option<Row>], s: usize, logits: &[f32]) -> (usize, Option<u32>) {
    (s, rows[s].as_mut().and_then(|r| r.greedy.pick(logits)))
}
