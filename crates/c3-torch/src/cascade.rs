//! Text in, text out on the tch reference: tokenizer, prompt, model and the
//! generation rules bundled, as `c3 roundtrip --checkpoint` and training's
//! evaluation use them.

use std::ops::Range;
use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::c3::{C3Model, EncoderBatch};
use crate::error::{Error, Result};
use crate::generate::generate;
use crate::load::load_model;
use c3_core::prompt::encoder_input;
use c3_core::{
    C3Tokenizer, Cascade, Checkpoint, DecoderPrompt, Generated, GenerationConfig, PromptTemplate,
    WindowPlan,
};

/// A loaded checkpoint ready to compress and reconstruct.
pub struct TorchCascade {
    pub model: C3Model,
    pub tokenizer: C3Tokenizer,
    pub prompt: DecoderPrompt,
    template: PromptTemplate,
    plan: WindowPlan,
    generation: GenerationConfig,
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
        let template = PromptTemplate::default();
        let prompt = DecoderPrompt::build(&tokenizer, model.config.n_latents(), &template)?;
        let endoftext = tokenizer.specials().endoftext;
        let plan = model.config.window_plan(None, endoftext)?;
        let generation = GenerationConfig::reference(tokenizer.specials().stop_ids());
        Ok(TorchCascade {
            model,
            tokenizer,
            prompt,
            template,
            plan,
            generation,
            _vs: vs,
        })
    }

    /// Windows of `window` tokens instead of the model's own length.
    pub fn with_window(mut self, window: Option<usize>) -> Result<Self> {
        let endoftext = self.tokenizer.specials().endoftext;
        self.plan = self.model.config.window_plan(window, endoftext)?;
        Ok(self)
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

    /// The reference generation settings with this tokenizer's stop ids.
    pub fn reference_generation(&self) -> GenerationConfig {
        self.generation.clone()
    }
}

/// The tch reference cascade: what `--checkpoint` runs and training evaluates.
impl Cascade for TorchCascade {
    /// `[windows, N, D_dec]`.
    type Latents = Tensor;
    type Error = Error;

    fn backend(&self) -> &'static str {
        "tch"
    }
    fn tokenizer(&self) -> &C3Tokenizer {
        &self.tokenizer
    }
    fn n_latents(&self) -> usize {
        self.model.config.n_latents()
    }
    fn plan(&self) -> &WindowPlan {
        &self.plan
    }
    fn generation(&self) -> &GenerationConfig {
        &self.generation
    }
    fn template(&self) -> &PromptTemplate {
        &self.template
    }
    fn prompt(&self) -> &DecoderPrompt {
        &self.prompt
    }
    fn encode(&self, windows: &[Vec<u32>]) -> Result<Tensor> {
        self.compress_ids(windows)
    }
    fn decode(
        &self,
        latents: &Tensor,
        rows: Range<usize>,
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
    ) -> Result<Vec<Generated>> {
        let rows = latents.narrow(0, rows.start as i64, rows.len() as i64);
        generate(&self.model, prompt, &rows, cfg)
    }
}
