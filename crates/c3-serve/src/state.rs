//! What every handler shares: the loaded runtime, its scheduler, the limits and the
//! metrics; and the one way requests reach the scheduler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use c3_core::{GenerationConfig, WindowPlan};
use c3_runtime::{C3Runtime, Event, Scheduler, SchedulerOptions, Task, Ticket};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::error::ApiError;
use crate::metrics::{Metrics, TokenTimer};

/// Limits of the HTTP layer (the scheduler's are [`SchedulerOptions`]).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest request body in bytes (`--max-body`): 413 past it.
    pub max_body: usize,
    /// A request still running after this is answered 504 and cancelled.
    pub request_timeout: Duration,
    /// Longest `/v1/roundtrip` text in model tokens: its summary's precision is an
    /// edit distance, quadratic in the text's length.
    pub max_text_tokens: usize,
    /// Keys a request must carry (`--api-key-file`); `None`: no key needed.
    pub api_keys: Option<std::sync::Arc<crate::auth::ApiKeys>>,
    /// `/healthz` answers without a key (`--open-healthz`).
    pub open_healthz: bool,
    /// `/metrics` answers without a key (`--open-metrics`).
    pub open_metrics: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_body: 8 << 20,
            request_timeout: Duration::from_secs(120),
            max_text_tokens: 8192,
            api_keys: None,
            open_healthz: false,
            open_metrics: false,
        }
    }
}

/// The service's shared state.
pub struct AppState {
    pub rt: Arc<C3Runtime>,
    pub scheduler: Scheduler,
    pub scheduler_options: SchedulerOptions,
    pub options: ServeOptions,
    pub metrics: Metrics,
    /// The export's generation settings, used for every request.
    pub generation: GenerationConfig,
    /// How documents are windowed: the runtime's one plan (the export's window, or
    /// `--window`), copied here for the handlers.
    pub plan: WindowPlan,
    shutting_down: AtomicBool,
}

impl AppState {
    /// Starts the scheduler (allocating its KV cache for `max_batch` rows).
    pub fn new(
        rt: Arc<C3Runtime>,
        scheduler_options: SchedulerOptions,
        options: ServeOptions,
    ) -> Result<Self, c3_runtime::Error> {
        let plan = *rt.plan();
        let scheduler = Scheduler::start(rt.clone(), scheduler_options.clone())?;
        Ok(AppState {
            generation: rt.reference_generation(),
            rt,
            scheduler,
            scheduler_options,
            options,
            metrics: Metrics::new(),
            plan,
            shutting_down: AtomicBool::new(false),
        })
    }

    /// Refuses new work from now on (503); requests already accepted run to their end.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        self.scheduler.shutdown();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub(crate) fn check_open(&self) -> Result<(), ApiError> {
        if self.is_shutting_down() {
            return Err(ApiError::shutting_down());
        }
        Ok(())
    }

    /// Queues `task`; its events arrive on the returned channel. The sink runs on
    /// the scheduler thread, so it only sends (never blocks); a closed channel (the
    /// handler is gone) cancels the request, as does dropping the ticket.
    pub(crate) fn submit<T: Task>(&self, task: T) -> Result<Submitted<T::Output>, ApiError> {
        self.check_open()?;
        let (tx, rx) = unbounded_channel();
        let ticket = self
            .scheduler
            .submit(task, Box::new(move |e| tx.send(e).is_ok()))?;
        Ok(Submitted { ticket, events: rx })
    }
}

/// A queued request: keep `ticket` alive while waiting for `events`.
pub(crate) struct Submitted<T> {
    pub ticket: Ticket,
    pub events: UnboundedReceiver<Event<T>>,
}

impl<T> Submitted<T> {
    /// Waits for the result until `deadline`, timing tokens on the way. On any
    /// error the ticket is dropped here, which cancels the request and frees its rows.
    pub async fn outcome(
        mut self,
        state: &AppState,
        arrived: Instant,
        deadline: tokio::time::Instant,
    ) -> Result<T, ApiError> {
        let mut timer = TokenTimer::new(arrived);
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| ApiError::timeout(state.options.request_timeout))?;
            match event {
                Some(Event::Token { window, .. }) => timer.token(&state.metrics, window),
                Some(Event::WindowDone { .. }) => {}
                Some(Event::Done(o)) => return Ok(o),
                Some(Event::Failed(e)) => return Err(e.into()),
                // The scheduler dropped the request without a last event.
                None => return Err(c3_runtime::Error::Stopped.into()),
            }
        }
    }
}
