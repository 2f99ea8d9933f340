//! `"stream": true` round trips: Server-Sent Events. One `piece` event per piece of
//! decoded text as the windows decode (c3_core::stream: whole characters, document
//! order, trimmed like the final text, so the pieces joined are the summary's
//! `text`), then one `done` event with the summary, or one `error` event.
//!
//! The stream owns the request's ticket: when the client goes away hyper drops the
//! response body, the ticket goes with it, and the scheduler frees the request's
//! rows at its next step. The status (200) has left before decoding starts, so a
//! timeout or failure mid-stream is an `error` event, not a status code.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use c3_core::stream::DocumentStream;
use c3_core::{Reconstruction, Window};
use c3_runtime::{Event, Ticket};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::ApiError;
use crate::metrics::TokenTimer;
use crate::routes::{Streaming, summary};
use crate::state::{AppState, Submitted};

const ROUTE: &str = "/v1/roundtrip";

/// One streamed round trip, as the body stream's state.
struct RoundtripStream {
    st: Arc<AppState>,
    /// `None` once the request ended (dropping it earlier cancels the request).
    ticket: Option<Ticket>,
    events: UnboundedReceiver<Event<Reconstruction>>,
    text: String,
    doc: DocumentStream,
    timer: TokenTimer,
    arrived: Instant,
    deadline: tokio::time::Instant,
    /// Events ready to send (a flush and the summary can come together).
    ready: VecDeque<SseEvent>,
}

pub(crate) fn roundtrip(
    st: Arc<AppState>,
    text: String,
    windows: Vec<Window>,
    job: Submitted<Reconstruction>,
    arrived: Instant,
    deadline: tokio::time::Instant,
) -> Response {
    let state = RoundtripStream {
        st,
        ticket: Some(job.ticket),
        events: job.events,
        text,
        doc: DocumentStream::new(windows),
        timer: TokenTimer::new(arrived),
        arrived,
        deadline,
        ready: VecDeque::new(),
    };
    let body = futures_util::stream::unfold(state, |mut s| async move {
        let e = s.next().await?;
        Some((Ok::<_, std::convert::Infallible>(e), s))
    });
    // Keep-alive comments also find a vanished client while a long prefill runs.
    let mut resp = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    resp.extensions_mut().insert(Streaming);
    resp
}

fn piece(text: String) -> SseEvent {
    SseEvent::default()
        .event("piece")
        .data(json!({ "text": text }).to_string())
}

fn error(e: &ApiError) -> SseEvent {
    SseEvent::default()
        .event("error")
        .data(json!({ "error": e.message, "status": e.status.as_u16() }).to_string())
}

impl RoundtripStream {
    /// The next event to send, or `None` when the stream is over.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            self.ticket.as_ref()?;
            if let Err(e) = self.advance().await {
                self.ticket = None; // cancels the request, if it still runs
                self.ready.push_back(error(&e));
            }
        }
    }

    /// Waits for the scheduler's next event and queues what it produces.
    async fn advance(&mut self) -> Result<(), ApiError> {
        let event = tokio::time::timeout_at(self.deadline, self.events.recv())
            .await
            .map_err(|_| ApiError::timeout(self.st.options.request_timeout))?;
        let tok = &self.st.rt.tokenizer;
        let stream_err = |e: c3_core::Error| ApiError::internal(format!("streaming text: {e}"));
        let out = match event {
            Some(Event::Token { window, id }) => {
                self.timer.token(&self.st.metrics, window);
                self.doc.token(tok, window, id).map_err(stream_err)?
            }
            Some(Event::WindowDone { window, generated }) => self
                .doc
                .window_done(tok, window, &generated.ids)
                .map_err(stream_err)?,
            Some(Event::Done(r)) => {
                self.ticket = None;
                if let Some(p) = self.doc.finish(tok).map_err(stream_err)? {
                    self.ready.push_back(piece(p));
                }
                if self.doc.ids() != r.generation.ids {
                    tracing::error!("streamed ids differ from the round trip's output");
                }
                let (st, text) = (self.st.clone(), std::mem::take(&mut self.text));
                let v = tokio::task::spawn_blocking(move || summary(&st, &r, &text))
                    .await
                    .map_err(|e| ApiError::internal(format!("summary task failed: {e}")))?;
                self.ready
                    .push_back(SseEvent::default().event("done").data(v.to_string()));
                return Ok(());
            }
            Some(Event::Failed(e)) => return Err(e.into()),
            None => return Err(c3_runtime::Error::Stopped.into()),
        };
        if let Some(p) = out {
            self.ready.push_back(piece(p));
        }
        Ok(())
    }
}

impl Drop for RoundtripStream {
    fn drop(&mut self) {
        // Still holding the ticket: the client went away before the end.
        if self.ticket.is_some() {
            self.st.metrics.disconnect();
            tracing::debug!("stream dropped by its client; request cancelled");
        }
        self.st.metrics.duration(ROUTE, self.arrived.elapsed());
    }
}
