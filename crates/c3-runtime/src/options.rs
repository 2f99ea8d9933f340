//! How to run an export: the options every front-end fills (provider, threads,
//! batch and memory budgets, the window override, a TensorRT plan).

use std::path::PathBuf;

use c3_core::engine::EnginePlan;

use crate::provider::Provider;

/// How to run an export.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub provider: Provider,
    /// Run on the CPU if the requested provider cannot be used (off by default).
    pub allow_fallback: bool,
    /// Intra-op threads per session; 0 lets ONNX Runtime choose.
    pub threads: usize,
    /// Most documents per encoder run.
    pub batch_size: usize,
    /// Bytes an encoder run's activations may take: a run holds as many documents
    /// as fit (estimated from the encoder's shapes, encoder_batches.rs), at least one.
    pub encoder_memory: u64,
    /// A TensorRT plan folder made by `c3 build` for this export, with its check
    /// (`c3_trt::TrtPlanCheck`): run against the export and this machine's GPU,
    /// TensorRT and CUDA before anything is loaded, then TensorRT runs the plan's
    /// engines (`provider` is then TensorRT).
    pub engine: Option<EnginePlan>,
    /// Hash every file at load, the weights included (`--verify-files`); by default
    /// the graphs and tokenizer are hashed and the weight files' sizes checked, as
    /// their hashes were taken once at export.
    pub verify_files: bool,
    /// Compute the KV cache of the prompt's constant prefix once per loaded model and
    /// start every request from a copy (on by default; outputs are the same either
    /// way; off is for measuring what it saves).
    pub reuse_prompt_prefix: bool,
    /// A folder holding the CUDA libraries for the CUDA/TensorRT providers
    /// (`--cuda-libs`), searched before `$C3_CUDA_LIBS` and the Python packages'
    /// `nvidia/*/lib` folders (cuda_libs.rs).
    pub cuda_libs: Option<PathBuf>,
    /// Window length in tokens, overriding the export's (`--window`): the one place
    /// the override lives; [`C3Runtime::plan`] hands the result out.
    pub window: Option<usize>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            provider: Provider::Cpu,
            allow_fallback: false,
            threads: 0,
            batch_size: 16,
            encoder_memory: 1 << 30,
            engine: None,
            reuse_prompt_prefix: true,
            verify_files: false,
            cuda_libs: None,
            window: None,
        }
    }
}
