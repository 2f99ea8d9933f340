//! The two ways the CLI runs a model: the tch reference on a checkpoint
//! (`--checkpoint`) or the deployed ONNX Runtime cascade on an export (`--model`).
//! Commands that only reconstruct text take either, as a `c3_core::DynCascade`,
//! with the same output.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use c3_core::manifest::checkpoint_hash;
use c3_core::{BoxError, DynCascade, ExportManifest};
use c3_runtime::{C3Runtime, Provider, RuntimeOptions};
#[cfg(feature = "torch")]
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
    /// Runtime options for `--model`, windows of `window` tokens (`None`: the
    /// model's own).
    pub fn runtime_options(&self, window: Option<usize>) -> Result<RuntimeOptions> {
        // With --engine the runtime checks the plan and picks TensorRT itself.
        Ok(RuntimeOptions {
            provider: Provider::parse(&self.provider)?,
            allow_fallback: self.allow_fallback,
            engine: self.engine.clone().map(c3_trt::TrtPlanCheck::plan),
            verify_files: self.verify_files,
            cuda_libs: self.cuda_libs.clone(),
            window,
            ..Default::default()
        })
    }

    /// Loads whichever was given, windowing documents by `window` tokens (`None`:
    /// the model's own length).
    pub fn open(&self, window: Option<usize>) -> Result<Box<dyn DynCascade>> {
        match (&self.checkpoint, &self.model) {
            #[cfg(not(feature = "torch"))]
            (Some(_), None) => bail!(
                "--checkpoint runs the tch reference, and this c3 was built without libtorch (--no-default-features); give --model EXPORT"
            ),
            #[cfg(feature = "torch")]
            (Some(c), None) => {
                let device = c3_torch::parse_device(&self.device)?;
                Ok(Box::new(
                    TorchCascade::load(c, device)?.with_window(window)?,
                ))
            }
            (None, Some(m)) => Ok(Box::new(C3Runtime::load(m, self.runtime_options(window)?)?)),
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

    /// What results belong to: the export's manifest hash or the checkpoint's hash.
    pub fn identity(&self) -> Result<String> {
        Ok(match (&self.model, &self.checkpoint) {
            (Some(m), _) => format!("export {}", ExportManifest::load(m)?.1),
            (None, Some(c)) => format!("checkpoint {}", checkpoint_hash(c)?),
            (None, None) => bail!("no model given"),
        })
    }
}

/// A cascade error as the CLI reports it, its kind (input, environment) kept for
/// the exit code.
pub fn cascade_error(e: BoxError) -> anyhow::Error {
    anyhow::Error::from_boxed(e)
}
