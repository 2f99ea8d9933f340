//! Text in, text out on the tch reference: tokenizer, prompt, model and the
//! generation rules bundled, as `c3 roundtrip --checkpoint` and training's
//! evaluation use them.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::c3::{C3Model, EncoderBatch};
use crate::error::Result;
use crate::generate::generate;
use crate::load::load_model;
use c3_core::prompt::{document_ids, encoder_input};
use c3_core::{
    C3Tokenizer, Checkpoint, DecoderPrompt, GenerationConfig, PromptTemplate, Reconstruction,
};

/// A loaded checkpoint ready to compress and reconstruct.
pub struct TorchCascade {
    pub model: C3Model,
    pub tokenizer: C3Tokenizer,
    pub prompt: DecoderPrompt,
    _vs: tch::nn::VarStore,
}

impl TorchCascade {
    /// Loads checkpoint and tokenizer, checking they agree on the special ids.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let ck = Checkpoint::open(dir)?;
        let tokenizer = C3Tokenizer::from_dir(dir)?;
        tokenizer
            .specials()
            .check_config(&ck.config, tokenizer.path())?;
        let (vs, model) = load_model(&ck, device, Kind::Float)?;
        Self::from_model(vs, model, tokenizer)
    }

    /// Wraps an already built model (training evaluates its live weights this way).
    pub fn from_model(
        vs: tch::nn::VarStore,
        model: C3Model,
        tokenizer: C3Tokenizer,
    ) -> Result<Self> {
        let prompt = DecoderPrompt::build(
            &tokenizer,
            model.config.n_latents(),
            &PromptTemplate::default(),
        )?;
        Ok(TorchCascade {
            model,
            tokenizer,
            prompt,
            _vs: vs,
        })
    }

    /// Projected latents `[B, N, D_dec]` for already tokenized documents.
    pub fn compress_ids(&self, docs: &[Vec<u32>]) -> Result<Tensor> {
        let n = self.model.config.n_latents();
        let sp = self.tokenizer.specials();
        let seqs: Vec<Vec<u32>> = docs.iter().map(|d| encoder_input(d, n, sp)).collect();
        let device = self.model.q.device();
        let batch = EncoderBatch::new(&seqs, sp.endoftext, device)?;
        Ok(tch::no_grad(|| {
            self.model.project(&self.model.encode(&batch))
        }))
    }

    /// Tokenizes (refusing empty text), compresses window by window (`window`
    /// overrides the model's length) and reconstructs; `limit` caps each window's
    /// new tokens (`cfg.max_new_tokens` is set per batch of windows).
    pub fn roundtrip(
        &self,
        text: &str,
        cfg: &GenerationConfig,
        window: Option<usize>,
        limit: Option<usize>,
    ) -> Result<Reconstruction> {
        let plan = self
            .model
            .config
            .window_plan(window, self.tokenizer.specials().endoftext)?;
        Reconstruction::windowed(
            &self.tokenizer,
            document_ids(&self.tokenizer, text)?,
            &plan,
            cfg,
            limit,
            |inputs| self.compress_ids(inputs),
            |latents, range, cfg| {
                let rows = latents.narrow(0, range.start as i64, range.len() as i64);
                generate(&self.model, &self.prompt, &rows, cfg)
            },
        )
    }

    /// The reference generation settings with this tokenizer's stop ids.
    pub fn reference_generation(&self) -> GenerationConfig {
        GenerationConfig::reference(self.tokenizer.specials().stop_ids())
    }
}
