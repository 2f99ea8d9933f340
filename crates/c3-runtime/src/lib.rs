//! The deployed C3 cascade on ONNX Runtime (`ort`, load-dynamic): no libtorch, no
//! Python. Load an export folder ([`C3Runtime::load`], manifest and file hashes
//! checked), compress documents to latents in length-sorted batches
//! ([`C3Runtime::compress`]), decode latents back to text with a KV cache, greedy with
//! the shared generation rules, streaming and batched ([`C3Runtime::generate`]), and
//! keep latents in files that remember their export ([`latent_file`]).
//!
//! A loaded [`C3Runtime`] is `Send + Sync`: requests on several threads share it, each
//! ONNX session is used by one request at a time (ONNX Runtime's `run` needs exclusive
//! access in `ort`), and all per-request state lives in the request.
//!
//! Every fallible call returns [`Result`] with the typed [`Error`]; no `ort` type
//! appears in the public API ([`Embeds`] wraps the decoder's input values).

#[cfg(feature = "bench")]
pub mod bench;
pub mod cuda_libs;
mod decode;
mod encoder_batches;
mod error;
mod external;
pub mod latent_file;
mod latents;
mod model;
mod options;
mod provider;
pub mod scheduler;
mod sessions;
mod values;

pub use c3_core::{Cascade, Decompressed};
pub use decode::{DecodeState, Logits};
pub use error::{Error, Result};
pub use latents::Latents;
pub use model::{C3Runtime, Compressed};
pub use options::RuntimeOptions;
pub use provider::Provider;
pub use scheduler::{
    CompressTask, DecompressTask, Event, RoundtripTask, Scheduler, SchedulerOptions, Sink, Stats,
    Task, Ticket,
};
pub use values::Embeds;
