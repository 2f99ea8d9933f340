//! The dict `roundtrip` returns: the fields of `c3 roundtrip --json`, built by the
//! one function the CLI and the HTTP service use (`c3_core::report`).

use std::sync::OnceLock;

use c3_core::report::{RoundtripInfo, roundtrip_json};
use c3_core::{C3Tokenizer, Reconstruction};

/// What the summary needs beyond a [`Reconstruction`]; one per `Runtime`, shared
/// with its streams.
pub struct Summaries {
    pub window: usize,
    pub n_latents: usize,
    /// The Qwen vocabulary for `qwen_text_tokens`, loaded on first use (None when
    /// not installed: the field is then null, as in the CLI's output).
    qwen: OnceLock<Option<C3Tokenizer>>,
}

impl Summaries {
    pub fn new(window: usize, n_latents: usize) -> Self {
        Summaries {
            window,
            n_latents,
            qwen: OnceLock::new(),
        }
    }

    fn qwen(&self) -> Option<&C3Tokenizer> {
        self.qwen
            .get_or_init(|| {
                let path = c3_core::deps::qwen_tiktoken().ok()?;
                C3Tokenizer::from_tiktoken(&path).ok()
            })
            .as_ref()
    }

    /// The summary of `r`, a roundtrip of `input`.
    pub fn roundtrip(&self, input: &str, r: &Reconstruction) -> serde_json::Value {
        let qwen_text_tokens = self
            .qwen()
            .and_then(|t| t.encode(input).ok())
            .map(|ids| ids.len());
        roundtrip_json(
            r,
            &RoundtripInfo {
                input,
                window: self.window,
                n_latents: self.n_latents,
                qwen_text_tokens,
                backend: "onnxruntime",
            },
        )
    }
}
