//! The scheduler thread: receive, encode, admit, step, finish; again.
//!
//! Every loop turn is one step boundary. Per turn: new jobs are taken in; cancelled
//! ones leave (freeing their rows); one encoder batch of waiting windows runs (so a
//! long document's encoding interleaves with others' decoding); waiting rows fill
//! free slots (their prefill runs); then every running row advances one token.
//!
//! Each window of each request is in exactly one [`WindowState`]; requests live in a
//! map by id, running rows in their slots. A failed encoder batch or prefill is
//! retried request by request (row by row), so only the request at fault fails; a
//! failed step (the cache may be half written) fails the requests running in it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use c3_core::window::join;
use c3_core::{DecoderPrompt, Decompressed, Generated, Reconstruction, RowGreedy, Window};

use super::job::{Decoding, Progress, Reply};
use super::{SchedulerOptions, Shared, Submission};
use crate::Latents;
use crate::decode::cache::{KvCache, NewRow};
use crate::error::{Error, Result};

use crate::model::{C3Runtime, Compressed};

/// Positions a row holds: the model's prompt, the room for longer request prompts,
/// and the largest window's new tokens; at most the decoder context.
pub(super) fn capacity(rt: &C3Runtime, options: &SchedulerOptions) -> Result<usize> {
    let m = &rt.manifest;
    let full = Window {
        doc: 0,
        start: 0,
        tokens: rt.plan().window,
        skip: 0,
        pad: 0,
    };
    let want = rt.prompt().ids.len() + options.prompt_room + full.max_new_tokens(None);
    Ok(want.min(m.max_context))
}

/// Where one window of a request is.
enum WindowState {
    /// Waiting for the encoder, with its input ids.
    ToEncode(Vec<u32>),
    /// Encoded (or given, for a decompress), waiting for a slot; a compress
    /// request's windows end here.
    Ready(Latents),
    /// A running row in this slot.
    Decoding {
        slot: usize,
    },
    Done(Generated),
}

/// A request in the worker.
struct Request {
    reply: Reply,
    cancel: Arc<AtomicBool>,
    windows: Vec<Window>,
    states: Vec<WindowState>,
    doc_tokens: Vec<usize>,
    /// `None`: a compress request (it ends once every window is encoded).
    decoding: Option<Decoding>,
    /// Counted in the scheduler's queue until its last window is admitted.
    in_queue: bool,
    started: Instant,
    encode_seconds: Option<f64>,
    decode_started: Option<Instant>,
}

impl Request {
    fn progress(&mut self, p: Progress) {
        if !self.reply.progress(p) {
            self.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Windows not yet running or done.
    fn waiting(&self) -> usize {
        (self.states.iter())
            .filter(|s| matches!(s, WindowState::ToEncode(_) | WindowState::Ready(_)))
            .count()
    }
}

/// A running row: window `window` of request `req`.
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
    cache: Box<dyn KvCache + 'm>,
    reqs: BTreeMap<u64, Request>,
    next_id: u64,
    /// Windows waiting for the encoder, then for a slot, as (window index, request
    /// id): every request's first window before anyone's second, each in arrival
    /// order. The first window is what a client waits on for its first token, so
    /// under load time to first token stays near one step, not behind other
    /// documents' later windows; later windows cannot starve for long, since a
    /// request stays in the bounded queue until its last window is admitted.
    to_encode: BTreeSet<(usize, u64)>,
    to_admit: BTreeSet<(usize, u64)>,
    slots: Vec<Option<Row>>,
}

pub(super) fn run(
    rt: &C3Runtime,
    options: &SchedulerOptions,
    shared: &Shared,
    rx: Receiver<Submission>,
    ready: Sender<Result<()>>,
) {
    let start = capacity(rt, options)
        .and_then(|cap| rt.new_cache(options.max_batch, cap, rt.options.reuse_prompt_prefix));
    let cache = match start {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
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
        cache,
        reqs: BTreeMap::new(),
        next_id: 0,
        to_encode: BTreeSet::new(),
        to_admit: BTreeSet::new(),
        slots: (0..options.max_batch).map(|_| None).collect(),
    };
    let mut open = true;
    while open || !w.reqs.is_empty() {
        open = w.receive(&rx, open);
        w.sweep_cancelled();
        w.encode_some();
        w.admit();
        w.step();
        w.publish_running();
    }
}

impl Worker<'_> {
    /// Takes new jobs; blocks when there is nothing to do. Returns whether the
    /// channel is still open.
    fn receive(&mut self, rx: &Receiver<Submission>, open: bool) -> bool {
        if !open {
            return false;
        }
        if self.reqs.is_empty() {
            // Idle: wait, waking now and then so cancellation flags are seen.
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(s) => self.add(s),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(s) => self.add(s),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn add(&mut self, sub: Submission) {
        let id = self.next_id;
        self.next_id += 1;
        let split = sub.job.split(self.rt);
        let states: Vec<WindowState> = match split.latents.is_empty() {
            true => split
                .inputs
                .into_iter()
                .map(WindowState::ToEncode)
                .collect(),
            false => split.latents.into_iter().map(WindowState::Ready).collect(),
        };
        for (i, s) in states.iter().enumerate() {
            match s {
                WindowState::ToEncode(_) => self.to_encode.insert((i, id)),
                _ => self.to_admit.insert((i, id)),
            };
        }
        let req = Request {
            reply: split.reply,
            cancel: sub.cancel,
            windows: split.windows,
            states,
            doc_tokens: split.doc_tokens,
            decoding: split.decoding,
            in_queue: true,
            started: Instant::now(),
            encode_seconds: None,
            decode_started: None,
        };
        self.reqs.insert(id, req);
    }

    /// Ends request `id`: frees its rows, leaves the queue, and answers it (`None`:
    /// it was cancelled, nobody listens).
    fn finish(&mut self, id: u64, answer: Option<Result<(), Error>>) {
        let running: Vec<usize> = (self.reqs.get(&id).into_iter())
            .flat_map(|r| r.states.iter())
            .filter_map(|s| match s {
                WindowState::Decoding { slot } => Some(*slot),
                _ => None,
            })
            .collect();
        for slot in running {
            if self.slots[slot].as_ref().is_some_and(|r| r.req == id) {
                self.slots[slot] = None;
                self.cache.release(slot);
            }
        }
        self.to_encode.retain(|e| e.1 != id);
        self.to_admit.retain(|e| e.1 != id);
        // Gauges are current before the caller hears the request ended.
        self.publish_running();
        let Some(req) = self.reqs.remove(&id) else {
            return;
        };
        if req.in_queue {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        self.shared.finished.fetch_add(1, Ordering::Relaxed);
        match answer {
            Some(Ok(())) => deliver(self.rt, req),
            Some(Err(e)) => req.reply.fail(e),
            None => {}
        }
    }

    fn publish_running(&self) {
        let running = self.slots.iter().flatten().count();
        self.shared.running.store(running, Ordering::Relaxed);
    }

    fn sweep_cancelled(&mut self) {
        let gone: Vec<u64> = (self.reqs.iter())
            .filter(|(_, r)| r.cancel.load(Ordering::Relaxed))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.finish(id, None);
        }
    }

    /// One encoder batch of waiting windows, in arrival order. If it fails and
    /// holds several requests' windows, each request's windows are encoded again on
    /// their own: only the request at fault fails, with the batch's error kind.
    fn encode_some(&mut self) {
        let budget = self.rt.options.batch_size.min(self.options.admit_per_step);
        let n = budget.max(1).min(self.to_encode.len());
        let picked: Vec<(u64, usize)> = (0..n)
            .filter_map(|_| self.to_encode.pop_first())
            .map(|(i, id)| (id, i))
            .collect();
        if picked.is_empty() {
            return;
        }
        let mut by_req: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for &(id, i) in &picked {
            by_req.entry(id).or_default().push(i);
        }
        let groups: Vec<(u64, Vec<usize>)> = match self.encode(&picked) {
            Ok(()) => return,
            Err(e) if by_req.len() == 1 => {
                let id = picked[0].0;
                return self.finish(id, Some(Err(e)));
            }
            Err(_) => by_req.into_iter().collect(),
        };
        for (id, windows) in groups {
            let alone: Vec<(u64, usize)> = windows.into_iter().map(|i| (id, i)).collect();
            if let Err(e) = self.encode(&alone) {
                self.finish(id, Some(Err(e)));
            }
        }
    }

    /// Encodes windows `(request, window)` in one batch; on success each becomes
    /// ready (or its compress request ends).
    fn encode(&mut self, picked: &[(u64, usize)]) -> Result<()> {
        let inputs: Vec<Vec<u32>> = (picked.iter())
            .map(|&(id, i)| match self.reqs.get(&id).map(|r| &r.states[i]) {
                Some(WindowState::ToEncode(ids)) => ids.clone(),
                _ => Vec::new(),
            })
            .collect();
        let latents = self.rt.compress(&inputs)?;
        for (&(id, i), lat) in picked.iter().zip(latents) {
            self.encoded(id, i, lat);
        }
        Ok(())
    }

    fn encoded(&mut self, id: u64, i: usize, lat: Latents) {
        let Some(req) = self.reqs.get_mut(&id) else {
            return;
        };
        req.states[i] = WindowState::Ready(lat);
        let all = !(req.states.iter()).any(|s| matches!(s, WindowState::ToEncode(_)));
        if all {
            req.encode_seconds = Some(req.started.elapsed().as_secs_f64());
        }
        match req.decoding {
            Some(_) => {
                self.to_admit.insert((i, id));
            }
            // A compress request ends when its last window is encoded.
            None if all => self.finish(id, Some(Ok(()))),
            None => {}
        }
    }

    /// Fills free slots with waiting rows and runs their prefill. If a prefill of
    /// several rows fails, each row is prefilled again on its own: only the rows at
    /// fault fail their requests.
    fn admit(&mut self) {
        let free: Vec<usize> = (0..self.slots.len())
            .filter(|&s| self.slots[s].is_none())
            .collect();
        let take = (free.len())
            .min(self.to_admit.len())
            .min(self.options.admit_per_step);
        let mut admitted: Vec<(usize, u64, usize)> = Vec::with_capacity(take);
        for &slot in free.iter().take(take) {
            let Some((i, id)) = self.to_admit.pop_first() else {
                break;
            };
            admitted.push((slot, id, i));
        }
        if admitted.is_empty() {
            return;
        }
        let rows: Vec<(usize, Latents, Arc<DecoderPrompt>)> = (admitted.iter())
            .filter_map(|&(slot, id, i)| self.start_row(slot, id, i))
            .collect();
        self.publish_running();
        if rows.is_empty() {
            return;
        }
        let res = self.prefill(&rows);
        if res.is_err() && rows.len() > 1 {
            for (slot, ..) in &rows {
                self.cache.release(*slot);
            }
            for row in &rows {
                if let Err(e) = self.prefill(std::slice::from_ref(row)) {
                    self.row_failed(row.0, e);
                }
            }
        } else if let Err(e) = res {
            self.row_failed(rows[0].0, e);
        }
    }

    /// Puts window `i` of request `id` in `slot`: its latents and prompt, for the
    /// prefill; `None` if it is not ready (cancelled meanwhile).
    fn start_row(
        &mut self,
        slot: usize,
        id: u64,
        i: usize,
    ) -> Option<(usize, Latents, Arc<DecoderPrompt>)> {
        let context = self.rt.manifest.max_context;
        let req = self.reqs.get_mut(&id)?;
        let d = req.decoding.clone()?;
        let WindowState::Ready(lat) =
            std::mem::replace(&mut req.states[i], WindowState::Decoding { slot })
        else {
            return None;
        };
        let mut cfg = d.cfg.clone();
        cfg.max_new_tokens = req.windows[i].max_new_tokens(d.limit);
        let greedy = RowGreedy::new(&d.prompt.ids, context, &cfg);
        if req.in_queue && req.waiting() == 0 {
            req.in_queue = false;
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        req.decode_started.get_or_insert_with(Instant::now);
        self.slots[slot] = Some(Row {
            req: id,
            window: i,
            greedy,
            next: None,
        });
        Some((slot, lat, d.prompt))
    }

    /// Runs the prefill of `rows`; on success each row gets its first token.
    fn prefill(&mut self, rows: &[(usize, Latents, Arc<DecoderPrompt>)]) -> Result<()> {
        let new: Vec<NewRow<'_>> = rows.iter().map(|(s, l, p)| (*s, l, &**p)).collect();
        // Logits are copied (one row each, once per prefill), and the greedy choice
        // made only once the whole run succeeded: a prefill retried row by row must
        // not have advanced any row's greedy state.
        let mut got: Vec<(usize, Vec<f32>)> = Vec::with_capacity(rows.len());
        self.cache
            .prefill(&new, &mut |s, l| got.push((s, l.to_vec())))?;
        let picked = (got.iter())
            .map(|(s, l)| choose(&mut self.slots, *s, l))
            .collect();
        self.apply(picked);
        Ok(())
    }

    /// A row's own run failed: its request fails with that error.
    fn row_failed(&mut self, slot: usize, e: Error) {
        self.cache.release(slot);
        if let Some(row) = self.slots[slot].take() {
            self.finish(row.req, Some(Err(e)));
        }
    }

    /// Advances every running row by one token.
    fn step(&mut self) {
        let feed: Vec<(usize, u32)> = (self.slots.iter().enumerate())
            .filter_map(|(s, r)| r.as_ref().and_then(|r| r.next).map(|t| (s, t)))
            .collect();
        if feed.is_empty() {
            return;
        }
        let (slots, mut picked) = (&mut self.slots, Vec::new());
        let res = self
            .cache
            .step(&feed, &mut |s, l| picked.push(choose(slots, s, l)));
        match res {
            Ok(()) => self.apply(picked),
            Err(e) => {
                // The cache may be half written: every request running in it fails,
                // each with the step's error (its kind kept).
                self.cache.reset();
                let ids: BTreeSet<u64> = self.slots.iter().flatten().map(|r| r.req).collect();
                for id in ids {
                    self.finish(id, Some(Err(clone_error(&e))));
                }
            }
        }
    }

    /// Applies the tokens a run chose for each slot: events, finished rows.
    fn apply(&mut self, picked: Vec<(usize, Option<u32>)>) {
        for (s, tok) in picked {
            let Some(row) = self.slots[s].as_mut() else {
                continue;
            };
            row.next = tok;
            let (id, window, done) = (row.req, row.window, row.greedy.is_done());
            if let Some(t) = tok {
                self.shared.generated_tokens.fetch_add(1, Ordering::Relaxed);
                if let Some(req) = self.reqs.get_mut(&id) {
                    req.progress(Progress::Token { window, id: t });
                }
            }
            if done {
                self.row_done(s);
            }
        }
    }

    fn row_done(&mut self, s: usize) {
        let Some(row) = self.slots[s].take() else {
            return;
        };
        self.cache.release(s);
        let generated = row.greedy.into_result();
        let Some(req) = self.reqs.get_mut(&row.req) else {
            return;
        };
        req.progress(Progress::WindowDone {
            window: row.window,
            generated: generated.clone(),
        });
        req.states[row.window] = WindowState::Done(generated);
        if req.states.iter().all(|s| matches!(s, WindowState::Done(_))) {
            self.finish(row.req, Some(Ok(())));
        }
    }
}

/// Answers a finished request with its result type.
fn deliver(rt: &C3Runtime, req: Request) {
    let Request {
        reply,
        windows,
        states,
        doc_tokens,
        encode_seconds,
        decode_started,
        ..
    } = req;
    let mut latents = Vec::new();
    let mut gens = Vec::new();
    for s in states {
        match s {
            WindowState::Ready(l) => latents.push(l),
            WindowState::Done(g) => gens.push(g),
            _ => {}
        }
    }
    match reply {
        Reply::Compress(mut sink) => {
            sink(super::Event::Done(Compressed {
                windows,
                latents,
                doc_tokens,
            }));
        }
        Reply::Decompress(mut sink) => {
            let event = match join(&windows, &gens, doc_tokens.len()) {
                Ok((docs, reports)) => super::Event::Done(Decompressed { docs, reports }),
                Err(e) => super::Event::Failed(e.into()),
            };
            sink(event);
        }
        Reply::Roundtrip { text_ids, mut sink } => {
            let decode_seconds = decode_started.map_or(0.0, |t| t.elapsed().as_secs_f64());
            let event = match reconstruction(rt, &windows, &gens, text_ids) {
                Ok(mut r) => {
                    r.encode_seconds = encode_seconds.unwrap_or(0.0);
                    r.decode_seconds = decode_seconds;
                    super::Event::Done(r)
                }
                Err(e) => super::Event::Failed(e),
            };
            sink(event);
        }
    }
}

/// A round trip's windows joined and detokenized (timings filled by the caller).
fn reconstruction(
    rt: &C3Runtime,
    windows: &[Window],
    gens: &[Generated],
    text_ids: Vec<u32>,
) -> Result<Reconstruction> {
    let (docs, reports) = join(windows, gens, 1)?;
    Ok(Reconstruction::assemble(
        &rt.tokenizer,
        text_ids,
        docs,
        reports,
    )?)
}

/// The same error for another request of a failed step (errors are not `Clone`:
/// the kinds front-ends tell apart are kept, the rest keep their message).
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Input(m) => Error::Input(m.clone()),
        Error::Core(c3_core::Error::Input(m)) => Error::Input(m.clone()),
        Error::Ort(m) => Error::Ort(m.clone()),
        Error::QueueFull { max_queue } => Error::QueueFull {
            max_queue: *max_queue,
        },
        Error::Stopped => Error::Stopped,
        Error::Cancelled => Error::Cancelled,
        other => Error::Internal(other.to_string()),
    }
}

/// Greedy choice for slot `s` from its logits, inside the run's callback (the
/// logits are borrowed from the run's output: nothing is copied per row).
fn choose(slots: &mut [Option<Row>], s: usize, logits: &[f32]) -> (usize, Option<u32>) {
    (s, slots[s].as_mut().and_then(|r| r.greedy.pick(logits)))
}
