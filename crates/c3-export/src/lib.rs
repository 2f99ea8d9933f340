//! ONNX export of C3 checkpoints, without libtorch: the release layout is read
//! through memory-mapped safetensors and each tensor streams into the ONNX file as it
//! is written. Three models per export (export/CONTRACT.md):
//!
//! - `encoder.onnx`: documents' ids -> latents projected to the decoder width;
//! - `decoder.onnx`: one graph for prefill and KV-cached steps (Optimum naming);
//! - `embed_tokens.onnx`: the decoder's token embedding, so the runtime builds the
//!   prefill `inputs_embeds` with the latents in their slots.
//!
//! `--verify` runs the export in ONNX Runtime (through `c3-runtime`) and compares it
//! with the tch reference, obtained from the `c3 reference` command in a separate
//! process so this crate never links libtorch.
//!
//! As a release-pipeline step ([`staging`], [`error`], [`provenance`]): the folder
//! appears at `--out` only complete and verified, the same input gives the same
//! bytes, and failures carry a kind (input, verify, environment) = exit code.

#[cfg(feature = "bars")]
pub mod bars;
#[cfg(feature = "cli")]
pub mod cli;
pub mod encoder_gqa;
pub mod error;
pub mod export;
pub mod graphs;
pub mod options;
pub mod progress;
pub mod provenance;
pub mod quantize;
pub mod qwen2;
pub mod verify;
pub mod weights;

#[cfg(feature = "cli")]
pub use cli::ExportArgs;
pub use error::{ErrorKind, ExportError};
pub use export::{ExportReport, run, run_with};
pub use options::{ExportOptions, KvCacheChoice, QuantCompute, Quantize, Target};
pub use progress::Progress;
