//! The C3 cascade as an HTTP service: one loaded export ([`c3_runtime::C3Runtime`]),
//! one continuous-batching scheduler ([`c3_runtime::Scheduler`]) that every request
//! shares, and JSON routes in front of it (docs/serve.md):
//!
//! - `POST /v1/roundtrip`: compress a text and reconstruct it, with the same summary
//!   as `c3 roundtrip --json`; `"stream": true` streams the text as Server-Sent Events;
//! - `POST /v1/compress` / `POST /v1/decompress`: latent files, base64 in JSON;
//! - `GET /healthz`, `GET /metrics` (Prometheus);
//! - with `--api-key-file`, every route behind `Authorization: Bearer KEY` (auth.rs).
//!
//! [`serve`] runs it on a listener until a shutdown future resolves, so tests run
//! the server in-process on port 0; the `c3-serve` binary is a thin flag parser
//! around it. Nothing here links libtorch (a test checks the dependency tree).

pub mod auth;
mod error;
mod extract;
pub mod malloc;
pub mod metrics;
mod routes;
mod sse;
mod state;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use error::ApiError;
pub use routes::{BACKEND, CompressRequest, DecompressRequest, RoundtripRequest};
pub use state::{AppState, ServeOptions};

/// The service's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/roundtrip", post(routes::roundtrip))
        .route("/v1/compress", post(routes::compress))
        .route("/v1/decompress", post(routes::decompress))
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.options.max_body))
        // The key is checked before anything reads the body; the tracker, outside,
        // counts the 401s too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::track,
        ))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then shuts down
/// gracefully: new requests are refused (the listener closes; a request already on
/// an open connection gets 503), requests already accepted, streams included, run to
/// their end, and this returns once every connection has closed. The scheduler's
/// thread ends when the last [`AppState`] is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let stopping = state.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing the requests in flight");
        stopping.begin_shutdown();
    };
    // Small SSE events (one per piece) must leave at once: without TCP_NODELAY,
    // Nagle's algorithm meets the client's delayed ACK and a token waits ~40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await
}
