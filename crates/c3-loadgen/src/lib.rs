//! Load generator for the C3 HTTP service (`c3-serve`): concurrent streamed
//! `POST /v1/roundtrip` requests, measuring time to first token, inter-token
//! latency, total latency and generated tokens per request, at several
//! concurrency levels in one run so their ratios compare like with like.
//!
//! ```text
//! c3-loadgen --url http://127.0.0.1:8080 --concurrency 1,4,16 \
//!     --documents docs/ --requests 64 --max-new-tokens 128 --warmup 1 --json
//! ```
//!
//! As a library:
//!
//! ```no_run
//! # async fn demo() -> c3_loadgen::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use c3_loadgen::{Client, Plan, Quiet, Stop, read_documents, run_levels};
//!
//! let docs: Arc<[String]> = read_documents("docs.txt".as_ref())?.into();
//! let client = Client::new("http://127.0.0.1:8080", Duration::from_secs(300), 16)?;
//! let plan = Plan {
//!     concurrency: vec![1, 4, 16],
//!     stop: Stop::Requests(64),
//!     warmup: 1,
//!     max_new_tokens: None,
//! };
//! let (_tx, stop) = tokio::sync::watch::channel(false);
//! for level in run_levels(&client, docs, &plan, Arc::new(Quiet), stop).await {
//!     println!("{}: {:.1} tokens/s", level.concurrency, level.tokens_per_second);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What each number means:
//! - TTFT: request sent to the first `event: piece` (the server may hold a piece
//!   back for whitespace, so this is the first *piece*, not the first token id);
//! - ITL: the gaps between consecutive `piece` events of one request;
//! - latency: request sent to `event: done`; generated tokens: its `output_ids` length;
//! - errors by kind (`http_429` for a full queue is counted, never retried);
//! - percentiles: exact nearest rank over all samples ([`stats::percentile`]).

pub mod client;
pub mod documents;
pub mod report;
pub mod run;
pub mod sse;
pub mod stats;

use std::path::PathBuf;

pub use client::{Client, Failure, Sample};
pub use documents::read_documents;
pub use report::{LevelReport, Report, ratios};
pub use run::{Observer, Plan, Quiet, Stop, run_level, run_levels};

/// What can go wrong before the load starts (request failures are counted, not
/// raised: see [`Failure`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid UTF-8 (invalid byte at offset {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("{}: no documents: {why}", path.display())]
    NoDocuments { path: PathBuf, why: &'static str },
    #[error("invalid URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("{url}: {message}")]
    Server { url: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
