//! `Runtime.stream`: a Python iterator of text pieces while the scheduler decodes
//! one document's windows. Tokens arrive as scheduler events; `c3_core::stream`
//! turns them into whole-character pieces in document order (joined == the
//! roundtrip's text, as the HTTP service streams them).

use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use c3_core::Reconstruction;
use c3_core::stream::DocumentStream;
use c3_runtime::{C3Runtime, Event, Scheduler, Ticket};
use pyo3::prelude::*;

use crate::errors::{Fault, RaiseExt};
use crate::summary::Summaries;
use crate::{POLL, to_python};

/// Text pieces of one roundtrip, as they are decoded.
#[pyclass(frozen, module = "c3", name = "TextStream")]
pub struct TextStream {
    state: Mutex<State>,
    text: String,
    rt: Arc<C3Runtime>,
    summaries: Arc<Summaries>,
}

struct State {
    rx: mpsc::Receiver<Event<Reconstruction>>,
    pieces: DocumentStream,
    finished: bool,
    summary: Option<serde_json::Value>,
    /// Dropping the stream drops the ticket: the request is cancelled.
    _ticket: Ticket,
    /// Keeps the scheduler alive while the stream is (even past `close()`).
    _sched: Arc<Scheduler>,
}

/// What one wait gave.
enum Step {
    Piece(String),
    /// No piece yet: let Python handle signals, then wait again.
    Pending,
    End,
}

impl TextStream {
    pub fn new(
        text: String,
        rt: Arc<C3Runtime>,
        summaries: Arc<Summaries>,
        pieces: DocumentStream,
        sched: Arc<Scheduler>,
        rx: mpsc::Receiver<Event<Reconstruction>>,
        ticket: Ticket,
    ) -> Self {
        TextStream {
            state: Mutex::new(State {
                rx,
                pieces,
                finished: false,
                summary: None,
                _ticket: ticket,
                _sched: sched,
            }),
            text,
            rt,
            summaries,
        }
    }

    /// Applies events until one completes a piece, the stream ends, or [`POLL`]
    /// passes (called without the GIL).
    fn step(&self) -> Result<Step, Fault> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + POLL;
        let tok = &self.rt.tokenizer;
        while !st.finished {
            let wait = deadline.saturating_duration_since(Instant::now());
            let event = match st.rx.recv_timeout(wait) {
                Ok(e) => e,
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(Step::Pending),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    st.finished = true;
                    return Err(Fault::internal("the scheduler is not running"));
                }
            };
            let piece = match event {
                Event::Token { window, id } => st.pieces.token(tok, window, id),
                Event::WindowDone { window, generated } => {
                    st.pieces.window_done(tok, window, &generated.ids)
                }
                Event::Done(r) => {
                    st.finished = true;
                    st.summary = Some(self.summaries.roundtrip(&self.text, &r));
                    st.pieces.finish(tok)
                }
                Event::Failed(e) => {
                    st.finished = true;
                    return Err(e.into());
                }
            };
            // The stream's own errors are inconsistent scheduler events, never the
            // caller's input.
            let piece = piece.map_err(|e| Fault::internal(e.to_string()))?;
            if let Some(p) = piece.filter(|p| !p.is_empty()) {
                return Ok(Step::Piece(p));
            }
        }
        Ok(Step::End)
    }
}

#[pymethods]
impl TextStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next piece; between waits Python handles signals (Ctrl-C raises
    /// KeyboardInterrupt here, and dropping the stream then cancels the request).
    /// Checked before each piece too: a C-level consumer (`list(stream)`,
    /// `"".join(stream)`) runs no bytecode between pieces, so a stream that never
    /// waits would otherwise see Ctrl-C only at its end.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        loop {
            match py.detach(|| self.step()).raise(py)? {
                Step::Piece(p) => {
                    py.check_signals()?;
                    return Ok(Some(p));
                }
                Step::End => return Ok(None),
                Step::Pending => py.check_signals()?,
            }
        }
    }

    /// The roundtrip dict once the stream is exhausted, else None.
    #[getter]
    fn summary(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        // Busy means another thread is waiting for a piece: not exhausted.
        let Ok(st) = self.state.try_lock() else {
            return Ok(None);
        };
        st.summary.as_ref().map(|v| to_python(py, v)).transpose()
    }
}
