//! The two ways the CLI runs a model: the tch reference on a checkpoint
//! (`--checkpoint`) or the deployed ONNX Runtime cascade on an export (`--model`).
//! Commands that only reconstruct text take either, with the same output.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use c3_core::window::decode_windows;
use c3_core::{C3Tokenizer, Generated, GenerationConfig, Reconstruction, WindowPlan, WindowReport};
use c3_runtime::{C3Runtime, Provider, RuntimeOptions};
use c3_torch::TorchCascade;

/// `--checkpoint CKPT` or `--model EXPORT` (with its execution provider).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Checkpoint folder (release layout), run on the tch reference.
    #[arg(long, conflicts_with = "model")]
    pub checkpoint: Option<PathBuf>,
    /// Device for --checkpoint: cpu, cuda, cuda:N or auto (CUDA needs the host's
    /// libtorch with libtorch_cuda.so beside it; docs/gpu.md).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Export folder (made by `c3 export`), run on ONNX Runtime.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Execution provider for --model: cpu, cuda or tensorrt.
    #[arg(long, default_value = "cpu")]
    pub provider: String,
    /// Run on the CPU when the requested provider is unavailable (otherwise an error).
    #[arg(long)]
    pub allow_fallback: bool,
    /// Folder of the CUDA libraries for --provider cuda|tensorrt (also $C3_CUDA_LIBS;
    /// by default the Python packages' nvidia/*/lib folders are searched).
    #[arg(long)]
    pub cuda_libs: Option<PathBuf>,
    /// TensorRT plan folder from `c3 build` (implies --provider tensorrt).
    #[arg(long)]
    pub engine: Option<PathBuf>,
    /// Hash every file of --model at load, the weights included (by default the
    /// graphs and tokenizer are hashed and weight files checked by size: their
    /// hashes were taken at export).
    #[arg(long)]
    pub verify_files: bool,
}

impl ModelArgs {
    /// Runtime options for `--model`.
    pub fn runtime_options(&self) -> Result<RuntimeOptions> {
        // With --engine the runtime checks the plan and picks TensorRT itself.
        Ok(RuntimeOptions {
            provider: Provider::parse(&self.provider)?,
            allow_fallback: self.allow_fallback,
            engine: self.engine.clone(),
            verify_files: self.verify_files,
            cuda_libs: self.cuda_libs.clone(),
            ..Default::default()
        })
    }

    /// Loads whichever was given.
    pub fn open(&self) -> Result<Backend> {
        match (&self.checkpoint, &self.model) {
            (Some(c), None) => Ok(Backend::Torch(Box::new(TorchCascade::load(
                c,
                c3_torch::parse_device(&self.device)?,
            )?))),
            (None, Some(m)) => Ok(Backend::Ort(Box::new(C3Runtime::load(
                m,
                self.runtime_options()?,
            )?))),
            _ => bail!("give --checkpoint CKPT (tch reference) or --model EXPORT (ONNX Runtime)"),
        }
    }

    /// The path given, for reports.
    pub fn path(&self) -> &Path {
        self.model
            .as_deref()
            .or(self.checkpoint.as_deref())
            .unwrap_or(Path::new("?"))
    }
}

/// A loaded model on one back-end.
pub enum Backend {
    Torch(Box<TorchCascade>),
    Ort(Box<C3Runtime>),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Torch(_) => "tch",
            Backend::Ort(_) => "onnxruntime",
        }
    }

    pub fn tokenizer(&self) -> &C3Tokenizer {
        match self {
            Backend::Torch(c) => &c.tokenizer,
            Backend::Ort(r) => &r.tokenizer,
        }
    }

    pub fn n_latents(&self) -> usize {
        match self {
            Backend::Torch(c) => c.model.config.n_latents(),
            Backend::Ort(r) => r.n_latents(),
        }
    }

    pub fn reference_generation(&self) -> GenerationConfig {
        match self {
            Backend::Torch(c) => c.reference_generation(),
            Backend::Ort(r) => r.reference_generation(),
        }
    }

    /// Compresses tokenized documents and decodes them back, as one batch.
    pub fn reconstruct(&self, docs: &[Vec<u32>], cfg: &GenerationConfig) -> Result<Vec<Generated>> {
        match self {
            Backend::Torch(c) => {
                let latents = c.compress_ids(docs)?;
                Ok(c3_torch::generate(&c.model, &c.prompt, &latents, cfg)?)
            }
            Backend::Ort(r) => {
                let lats = r.compress(docs)?;
                let refs: Vec<_> = lats.iter().collect();
                Ok(r.generate(&refs, cfg, &mut |_, _| {})?)
            }
        }
    }

    /// One text of any length through the cascade, window by window, with timings.
    pub fn roundtrip(
        &self,
        text: &str,
        cfg: &GenerationConfig,
        window: Option<usize>,
        limit: Option<usize>,
    ) -> Result<Reconstruction> {
        Ok(match self {
            Backend::Torch(c) => c.roundtrip(text, cfg, window, limit)?,
            Backend::Ort(rt) => rt.roundtrip(text, cfg, window, limit)?,
        })
    }

    /// How this model windows documents (`window` overrides the length).
    pub fn window_plan(&self, window: Option<usize>) -> Result<WindowPlan> {
        Ok(match self {
            Backend::Torch(c) => c
                .model
                .config
                .window_plan(window, c.tokenizer.specials().endoftext)?,
            Backend::Ort(r) => r.manifest.window_plan(window)?,
        })
    }

    /// Tokenized documents of any length, windowed, reconstructed in batched
    /// decodes and joined: each document's output ids and every window's outcome.
    pub fn reconstruct_documents(
        &self,
        docs: &[Vec<u32>],
        plan: &WindowPlan,
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<(Vec<Vec<u32>>, Vec<WindowReport>)> {
        let (windows, inputs) = plan.split_inputs(docs);
        decode_windows(&windows, docs.len(), cfg, limit, |range, cfg| {
            self.reconstruct(&inputs[range], cfg)
        })
    }
}
