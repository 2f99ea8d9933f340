//! The training recipe (`c3 train --config RECIPE.toml`). Defaults are the
//! reference recipe of spec §5 (lr 1e-5, no weight decay, clip 1.0, 100 warmup
//! steps then cosine, effective batch 256, 40k steps); a recipe file overrides
//! any part. Unknown keys are an error: a typo must not silently train the default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    /// Run name; checkpoints go to `out_dir` (default `runs/<name>`).
    pub name: String,
    pub seed: u64,
    /// `auto` (CUDA if present), `cpu` or `cuda`.
    pub device: String,
    /// Intra-op threads for libtorch (0: libtorch's default).
    pub threads: usize,
    pub out_dir: Option<PathBuf>,
    pub data: DataRecipe,
    pub model: ModelRecipe,
    pub optim: OptimRecipe,
    pub schedule: ScheduleRecipe,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataRecipe {
    /// Files or directories of .txt/.md/.rst/.pod/.jsonl.
    pub paths: Vec<PathBuf>,
    pub extensions: Vec<String>,
    /// Passage length range, in the model's own tokens (uniform in [min, max]).
    pub min_tokens: usize,
    pub max_tokens: usize,
    /// Passages held out for evaluation (chosen by seed, never trained on).
    pub held_out: usize,
    /// Probability of replacing an answer token in the decoder's *input* (not its
    /// label) with the pad id, which pushes the decoder to read the latents.
    pub word_dropout: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelRecipe {
    /// `scratch`, or a checkpoint folder (release layout) to start from.
    pub init: String,
    /// For `scratch`: the tokenizer.json (its specials define the C3 ids).
    pub tokenizer: Option<PathBuf>,
    /// For `scratch`: N.
    pub latent_tokens: usize,
    pub encoder: ShapeRecipe,
    pub decoder: ShapeRecipe,
    /// Storage dtype of checkpoints. fp32 keeps resume exact; bf16 halves size.
    pub save_dtype: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapeRecipe {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub tie_word_embeddings: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimRecipe {
    pub lr: f64,
    /// Multiplier on the lr of `model.Q` and `model.mm_projector` (the latent path).
    pub latent_lr_scale: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub clip: f64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (effective batch = batch_size x grad_accum).
    pub grad_accum: usize,
    /// `auto` (bf16 autocast on CUDA, fp32 on CPU), `fp32` or `bf16`.
    pub precision: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleRecipe {
    pub total_steps: usize,
    pub warmup_steps: usize,
    /// Final lr as a fraction of the peak (cosine floor).
    pub min_lr_ratio: f64,
    pub eval_every: usize,
    /// Held-out passages reconstructed at each evaluation.
    pub eval_passages: usize,
    pub save_every: usize,
    /// Checkpoints kept (older ones are deleted).
    pub keep_last: usize,
    pub log_every: usize,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            name: "c3".into(),
            seed: 0,
            device: "auto".into(),
            threads: 0,
            out_dir: None,
            data: DataRecipe::default(),
            model: ModelRecipe::default(),
            optim: OptimRecipe::default(),
            schedule: ScheduleRecipe::default(),
        }
    }
}

impl Default for DataRecipe {
    fn default() -> Self {
        DataRecipe {
            paths: vec![],
            extensions: c3_core::corpus::DEFAULT_EXTENSIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            min_tokens: 64,
            max_tokens: 1024,
            held_out: 64,
            word_dropout: 0.0,
        }
    }
}

impl Default for ModelRecipe {
    fn default() -> Self {
        ModelRecipe {
            init: "scratch".into(),
            tokenizer: None,
            latent_tokens: 32,
            encoder: ShapeRecipe::default(),
            decoder: ShapeRecipe::default(),
            save_dtype: "fp32".into(),
        }
    }
}

impl Default for ShapeRecipe {
    fn default() -> Self {
        ShapeRecipe {
            hidden_size: 128,
            intermediate_size: 512,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            max_position_embeddings: 1024,
            rope_theta: 10_000.0,
            tie_word_embeddings: true,
        }
    }
}

impl Default for OptimRecipe {
    fn default() -> Self {
        OptimRecipe {
            lr: 1e-5,
            latent_lr_scale: 1.0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            clip: 1.0,
            batch_size: 16,
            grad_accum: 16,
            precision: "auto".into(),
        }
    }
}

impl Default for ScheduleRecipe {
    fn default() -> Self {
        ScheduleRecipe {
            total_steps: 40_000,
            warmup_steps: 100,
            min_lr_ratio: 0.0,
            eval_every: 1000,
            eval_passages: 32,
            save_every: 500,
            keep_last: 3,
            log_every: 10,
        }
    }
}

impl Recipe {
    /// Reads and validates a TOML recipe; relative paths are taken from the
    /// current directory (recipes are run from the repository root).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.into(),
            source: e,
        })?;
        let r: Recipe = toml::from_str(&text).map_err(|e| Error::Recipe {
            path: path.into(),
            msg: e.to_string(),
        })?;
        r.validate().map_err(|msg| Error::Recipe {
            path: path.into(),
            msg,
        })?;
        Ok(r)
    }

    /// Checks ranges that would otherwise fail deep inside training.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let d = &self.data;
        if d.paths.is_empty() {
            return Err("data.paths is empty".into());
        }
        if d.min_tokens == 0 || d.min_tokens > d.max_tokens {
            return Err(format!(
                "data.min_tokens {} must be in 1..=max_tokens {}",
                d.min_tokens, d.max_tokens
            ));
        }
        if !(0.0..1.0).contains(&d.word_dropout) {
            return Err("data.word_dropout must be in [0, 1)".into());
        }
        let o = &self.optim;
        if o.batch_size == 0 || o.grad_accum == 0 {
            return Err("optim.batch_size and optim.grad_accum must be >= 1".into());
        }
        if !["auto", "fp32", "bf16"].contains(&o.precision.as_str()) {
            return Err(format!(
                "optim.precision `{}` (expected auto, fp32 or bf16)",
                o.precision
            ));
        }
        if self.schedule.total_steps == 0 || self.schedule.keep_last == 0 {
            return Err("schedule.total_steps and schedule.keep_last must be >= 1".into());
        }
        if self.model.init == "scratch" && self.model.tokenizer.is_none() {
            return Err("model.tokenizer is required when model.init = \"scratch\"".into());
        }
        c3_core::DType::parse(&self.model.save_dtype)
            .ok_or_else(|| format!("model.save_dtype `{}`", self.model.save_dtype))?;
        Ok(())
    }

    /// Where checkpoints and metrics go.
    pub fn out_dir(&self) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.name))
    }
}
