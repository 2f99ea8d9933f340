//! The cascade as every front-end sees it, whichever back-end runs it: documents
//! windowed by one plan, compressed to latents, decoded greedily after a prompt and
//! joined. A back-end (ONNX Runtime's `C3Runtime`, the tch `TorchCascade`) supplies
//! the two model calls, [`Cascade::encode`] and [`Cascade::decode`]; the round trip,
//! the batched reconstruction and per-request prompts are written once, here.
//! [`DynCascade`] is the same surface as a trait object, for a command that loads
//! either back-end from its flags.

use std::ops::Range;

use crate::error::Error;
use crate::generation::{Generated, GenerationConfig, Reconstruction};
use crate::prompt::{DecoderPrompt, PromptTemplate, document_ids};
use crate::tokenizer::C3Tokenizer;
use crate::window::{WindowPlan, WindowReport, decode_windows};

/// Documents decoded from their windows: each document's ids and every window's
/// report, in document order.
#[derive(Debug, Clone, PartialEq)]
pub struct Decompressed {
    pub docs: Vec<Vec<u32>>,
    pub reports: Vec<WindowReport>,
}

/// A loaded C3 model on some back-end.
pub trait Cascade {
    /// Latents of a batch of windows, as the back-end keeps them.
    type Latents;
    type Error: From<Error>;

    /// The back-end's name in reports (`onnxruntime`, `tch`).
    fn backend(&self) -> &'static str;
    fn tokenizer(&self) -> &C3Tokenizer;
    /// N, the latents per window.
    fn n_latents(&self) -> usize;
    /// How documents are windowed, fixed when the model was loaded.
    fn plan(&self) -> &WindowPlan;
    /// The model's generation settings.
    fn generation(&self) -> &GenerationConfig;
    /// The prompt template the model was trained with.
    fn template(&self) -> &PromptTemplate;
    /// The decoder prompt built from [`Self::template`].
    fn prompt(&self) -> &DecoderPrompt;

    /// Latents of tokenized windows (each at most the plan's window), in order.
    fn encode(&self, windows: &[Vec<u32>]) -> Result<Self::Latents, Self::Error>;
    /// Greedy decoding of windows `rows` of `latents`, each after `prompt`.
    fn decode(
        &self,
        latents: &Self::Latents,
        rows: Range<usize>,
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
    ) -> Result<Vec<Generated>, Self::Error>;

    /// The decoder prompt for a request: the model's own, or its template with the
    /// request's `task` after the latents (for a model trained to answer it).
    fn prompt_for(&self, task: Option<&str>) -> Result<DecoderPrompt, Self::Error> {
        match task {
            None => Ok(self.prompt().clone()),
            Some(t) => {
                let template = self.template().with_task(t)?;
                Ok(DecoderPrompt::build(
                    self.tokenizer(),
                    self.n_latents(),
                    &template,
                )?)
            }
        }
    }

    /// Compresses `text` window by window and reconstructs it after `prompt`;
    /// `limit` caps each window's new tokens. Timed: encoding and decoding apart.
    fn roundtrip(
        &self,
        text: &str,
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<Reconstruction, Self::Error> {
        let ids = document_ids(self.tokenizer(), text)?;
        Reconstruction::windowed(
            self.tokenizer(),
            ids,
            self.plan(),
            cfg,
            limit,
            |inputs| self.encode(inputs),
            |latents, rows, cfg| self.decode(latents, rows, prompt, cfg),
        )
    }

    /// Compresses windows and decodes them back as one batch, after the model's
    /// prompt.
    fn reconstruct(
        &self,
        windows: &[Vec<u32>],
        cfg: &GenerationConfig,
    ) -> Result<Vec<Generated>, Self::Error> {
        let latents = self.encode(windows)?;
        self.decode(&latents, 0..windows.len(), self.prompt(), cfg)
    }

    /// Tokenized documents of any length, windowed, reconstructed in batched
    /// decodes and joined: each document's output ids and every window's outcome.
    fn reconstruct_documents(
        &self,
        docs: &[Vec<u32>],
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<Decompressed, Self::Error> {
        let (windows, inputs) = self.plan().split_inputs(docs);
        let latents = self.encode(&inputs)?;
        let (docs, reports) = decode_windows(&windows, docs.len(), cfg, limit, |rows, cfg| {
            self.decode(&latents, rows, self.prompt(), cfg)
        })?;
        Ok(Decompressed { docs, reports })
    }
}

/// Any back-end's error, boxed: what [`DynCascade`] returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// [`Cascade`] as a trait object (its latents type erased): what a command that
/// loads either back-end holds. Implemented for every [`Cascade`].
pub trait DynCascade {
    fn backend(&self) -> &'static str;
    fn tokenizer(&self) -> &C3Tokenizer;
    fn n_latents(&self) -> usize;
    fn plan(&self) -> &WindowPlan;
    fn generation(&self) -> &GenerationConfig;
    fn prompt_for(&self, task: Option<&str>) -> Result<DecoderPrompt, BoxError>;
    fn roundtrip(
        &self,
        text: &str,
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<Reconstruction, BoxError>;
    fn reconstruct(
        &self,
        windows: &[Vec<u32>],
        cfg: &GenerationConfig,
    ) -> Result<Vec<Generated>, BoxError>;
    fn reconstruct_documents(
        &self,
        docs: &[Vec<u32>],
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<Decompressed, BoxError>;
}

impl<C> DynCascade for C
where
    C: Cascade,
    C::Error: std::error::Error + Send + Sync + 'static,
{
    fn backend(&self) -> &'static str {
        Cascade::backend(self)
    }
    fn tokenizer(&self) -> &C3Tokenizer {
        Cascade::tokenizer(self)
    }
    fn n_latents(&self) -> usize {
        Cascade::n_latents(self)
    }
    fn plan(&self) -> &WindowPlan {
        Cascade::plan(self)
    }
    fn generation(&self) -> &GenerationConfig {
        Cascade::generation(self)
    }
    fn prompt_for(&self, task: Option<&str>) -> Result<DecoderPrompt, BoxError> {
        Ok(Cascade::prompt_for(self, task)?)
    }
    fn roundtrip(
        &self,
        text: &str,
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<Reconstruction, BoxError> {
        Ok(Cascade::roundtrip(self, text, prompt, cfg, limit)?)
    }
    fn reconstruct(
        &self,
        windows: &[Vec<u32>],
        cfg: &GenerationConfig,
    ) -> Result<Vec<Generated>, BoxError> {
        Ok(Cascade::reconstruct(self, windows, cfg)?)
    }
    fn reconstruct_documents(
        &self,
        docs: &[Vec<u32>],
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<Decompressed, BoxError> {
        Ok(Cascade::reconstruct_documents(self, docs, cfg, limit)?)
    }
}
