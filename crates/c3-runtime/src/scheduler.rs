//! Continuous batching: one thread owns the decoder and serves every request of a
//! loaded [`C3Runtime`]. Requests of any front-end (HTTP service, Python, CLI) are
//! [`Task`]s; their windows are encoded in shared encoder batches, then decoded as
//! rows of one running batch that rows join (after their prefill) and leave at step
//! boundaries. A row's tokens depend only on its own latents: greedy outputs equal
//! [`C3Runtime::roundtrip`]'s, whatever else shares the batch (tested).
//!
//! Events reach the caller through a callback ([`Sink`]) run on the scheduler's
//! thread, so the caller picks the channel (tokio, std, Python queue). It must be
//! quick; returning `false` (the client went away) cancels the request, as does
//! dropping its [`Ticket`]. Cancelled rows free their slots at the next step.

mod job;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use c3_core::{DecoderPrompt, Decompressed, Generated, GenerationConfig, Reconstruction};

use crate::error::{Error, Result};

use crate::model::{C3Runtime, Compressed};
use job::Job;

/// Limits of a scheduler. The window length is the runtime's
/// ([`crate::RuntimeOptions::window`]): one plan for every request.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Rows (windows) decoded together at most: the KV cache is allocated for this
    /// many rows once, at start.
    pub max_batch: usize,
    /// Requests accepted but not yet decoding (waiting for the encoder or a row);
    /// one more is refused with [`Error::QueueFull`].
    pub max_queue: usize,
    /// Windows encoded, and new rows prefilled, per step at most. Prefill is
    /// compute-bound, so a burst of arrivals handled at once would stall every running
    /// row and give every arrival the whole burst's time to first token; in groups of
    /// this size the first arrivals start decoding early and running rows keep
    /// stepping between groups. Higher favours throughput on bursts, lower latency.
    pub admit_per_step: usize,
    /// Positions each row has beyond the model's own prompt and a full window's
    /// tokens: room for a request's own, longer prompt. A request whose prompt does
    /// not fit is refused at submit.
    pub prompt_room: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            max_batch: 16,
            max_queue: 64,
            admit_per_step: 4,
            prompt_room: 64,
        }
    }
}

/// Compress one tokenized document window by window and reconstruct it: a
/// [`Reconstruction`].
#[derive(Debug, Clone)]
pub struct RoundtripTask {
    pub text_ids: Vec<u32>,
    /// The decoder prompt; `None`: the model's own ([`C3Runtime::prompt`]).
    pub prompt: Option<Arc<DecoderPrompt>>,
    pub cfg: GenerationConfig,
    /// Caps each window's new tokens.
    pub limit: Option<usize>,
}

/// Latents of tokenized documents, window by window: a [`Compressed`].
#[derive(Debug, Clone)]
pub struct CompressTask {
    pub docs: Vec<Vec<u32>>,
}

/// Text back from compressed documents: a [`Decompressed`].
#[derive(Debug, Clone)]
pub struct DecompressTask {
    pub compressed: Compressed,
    /// The decoder prompt; `None`: the model's own.
    pub prompt: Option<Arc<DecoderPrompt>>,
    pub cfg: GenerationConfig,
    pub limit: Option<usize>,
}

/// What a request asks for, and the type of its result: a front-end receives
/// exactly that type ([`Event::Done`]), never a value of another task's.
pub trait Task: Send + 'static {
    type Output: Send + 'static;
    #[doc(hidden)]
    fn into_job(self, sink: Sink<Self::Output>) -> Job;
}

impl Task for RoundtripTask {
    type Output = Reconstruction;
    fn into_job(self, sink: Sink<Reconstruction>) -> Job {
        Job::Roundtrip(self, sink)
    }
}

impl Task for CompressTask {
    type Output = Compressed;
    fn into_job(self, sink: Sink<Compressed>) -> Job {
        Job::Compress(self, sink)
    }
}

impl Task for DecompressTask {
    type Output = Decompressed;
    fn into_job(self, sink: Sink<Decompressed>) -> Job {
        Job::Decompress(self, sink)
    }
}

/// Progress of a request, in order: tokens as they are chosen, each window's end,
/// then exactly one `Done` (the task's own result type) or `Failed`.
#[derive(Debug)]
pub enum Event<T> {
    /// A token generated for window `window` (an index into the request's windows,
    /// which are in document order).
    Token {
        window: usize,
        id: u32,
    },
    /// Window `window` finished decoding.
    WindowDone {
        window: usize,
        generated: Generated,
    },
    Done(T),
    /// The request's own error, of its own kind (a bad input is [`Error::Input`]).
    Failed(Error),
}

/// Receives a request's events on the scheduler thread; `false` cancels it.
pub type Sink<T> = Box<dyn FnMut(Event<T>) -> bool + Send>;

/// Keeps a submitted request alive: dropping it cancels the request.
#[derive(Debug)]
pub struct Ticket {
    cancel: Arc<AtomicBool>,
}

impl Ticket {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Gauges and counters for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests accepted and not yet decoding.
    pub queued: usize,
    /// Rows in the running batch.
    pub running: usize,
    /// Rows the batch can hold.
    pub max_batch: usize,
    /// Tokens generated since start.
    pub generated_tokens: u64,
    /// Requests finished (done, failed or cancelled) since start.
    pub finished: u64,
}

/// State shared between the scheduler's handle and its thread.
#[derive(Debug, Default)]
struct Shared {
    queued: AtomicUsize,
    running: AtomicUsize,
    generated_tokens: AtomicU64,
    finished: AtomicU64,
    accepting: AtomicBool,
}

/// A submitted request, as the worker receives it.
struct Submission {
    job: Job,
    cancel: Arc<AtomicBool>,
}

/// The continuous-batching scheduler of one loaded runtime.
pub struct Scheduler {
    rt: Arc<C3Runtime>,
    options: SchedulerOptions,
    tx: Option<mpsc::Sender<Submission>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the scheduler thread; its KV cache for `max_batch` rows is allocated
    /// before this returns (an allocation failure is this call's error).
    pub fn start(rt: Arc<C3Runtime>, options: SchedulerOptions) -> Result<Scheduler> {
        if options.max_batch == 0 || options.max_queue == 0 || options.admit_per_step == 0 {
            return Err(Error::Input(
                "max_batch, max_queue and admit_per_step must be at least 1".into(),
            ));
        }
        let shared = Arc::new(Shared::default());
        shared.accepting.store(true, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (rt, shared, options) = (rt.clone(), shared.clone(), options.clone());
            std::thread::Builder::new()
                .name("c3-scheduler".into())
                .spawn(move || worker::run(&rt, &options, &shared, rx, ready_tx))
                .map_err(|e| Error::Internal(format!("cannot start the scheduler thread: {e}")))?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::Stopped),
        }
        Ok(Scheduler {
            rt,
            options,
            tx: Some(tx),
            shared,
            thread: Some(thread),
        })
    }

    /// The runtime this scheduler drives.
    pub fn runtime(&self) -> &Arc<C3Runtime> {
        &self.rt
    }

    /// Queues `task`; its events go to `sink`. Refused at once (nothing queued) when
    /// the task is malformed ([`Error::Input`]), the queue is full
    /// ([`Error::QueueFull`]) or the scheduler is shutting down ([`Error::Stopped`]).
    pub fn submit<T: Task>(&self, task: T, sink: Sink<T::Output>) -> Result<Ticket> {
        let job = task.into_job(sink);
        job.check(&self.rt, worker::capacity(&self.rt, &self.options)?)?;
        if !self.shared.accepting.load(Ordering::Relaxed) {
            return Err(Error::Stopped);
        }
        let max_queue = self.options.max_queue;
        self.shared
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < max_queue).then_some(q + 1)
            })
            .map_err(|_| Error::QueueFull { max_queue })?;
        let cancel = Arc::new(AtomicBool::new(false));
        let sub = Submission {
            job,
            cancel: cancel.clone(),
        };
        let sent = self.tx.as_ref().map(|tx| tx.send(sub).is_ok());
        if sent != Some(true) {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Stopped);
        }
        Ok(Ticket { cancel })
    }

    /// Submits `task` and waits for its result (tokens are not streamed).
    pub fn run<T: Task>(&self, task: T) -> Result<T::Output> {
        let (tx, rx) = mpsc::channel();
        let _ticket = self.submit(
            task,
            Box::new(move |e| match e {
                Event::Done(o) => tx.send(Ok(o)).is_ok(),
                Event::Failed(e) => tx.send(Err(e)).is_ok(),
                _ => true,
            }),
        )?;
        rx.recv().map_err(|_| Error::Stopped)?
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            queued: s.queued.load(Ordering::Relaxed),
            running: s.running.load(Ordering::Relaxed),
            max_batch: self.options.max_batch,
            generated_tokens: s.generated_tokens.load(Ordering::Relaxed),
            finished: s.finished.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting requests; those already accepted run to their end.
    pub fn shutdown(&self) {
        self.shared.accepting.store(false, Ordering::Relaxed);
    }

    /// Shuts down and waits until every accepted request has ended.
    pub fn join(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shutdown();
        // Closing the channel lets the worker exit once it has no work left.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
