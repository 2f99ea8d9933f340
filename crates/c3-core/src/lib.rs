//! The C3 model contract, with no native dependency.
//!
//! Everything the training, export and runtime sides must agree on lives here:
//! the one config type ([`C3Config`]), the release checkpoint layout (root +
//! `llm1/`, single or sharded safetensors), the tokenizers (HF `tokenizer.json` and
//! the release's `qwen.tiktoken`), the prompt of spec §2, the generation rules
//! (greedy, `no_repeat_ngram_size`, stop tokens) and the metrics of spec §6.

pub mod cascade;
pub mod checkpoint;
pub mod config;
pub mod contract;
pub mod corpus;
pub mod deps;
pub mod engine;
pub mod error;
pub mod eval;
pub mod generation;
pub mod manifest;
pub mod metrics;
pub mod presets;
pub mod prompt;
pub mod published;
pub mod report;
pub mod room;
pub mod staging;
pub mod stream;
pub mod tokenizer;
pub mod window;

pub use cascade::{BoxError, Cascade, Decompressed, DynCascade};
pub use checkpoint::{Checkpoint, DType, TensorStore, TensorView};
pub use config::{C3Config, C3Fields, Qwen2Config};
pub use error::{Error, Result};
pub use generation::{
    BatchGreedy, FinishReason, Generated, GenerationConfig, NoRepeatNGram, Reconstruction,
    RowGreedy,
};
pub use manifest::{ExportManifest, FileCheck, KvCache, MANIFEST_FILE};
pub use prompt::{DecoderPrompt, PromptTemplate};
pub use tokenizer::{C3Tokenizer, SpecialTokens};
pub use window::{Window, WindowPlan, WindowReport};
