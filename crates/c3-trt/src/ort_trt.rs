//! Building and loading through ONNX Runtime's TensorRT execution provider (feature
//! `gpu`). ONNX Runtime is loaded dynamically (`c3_onnx::ort_env`), so this compiles
//! without CUDA or TensorRT; at run time it needs the `onnxruntime-gpu` library.
//! Never run on a GPU by its authors: see the crate README.

use std::path::Path;

use c3_onnx::ort::ep::{ArbitrarilyConfigurableExecutionProvider, ExecutionProvider, TensorRT};
use c3_onnx::ort::session::Session;

use crate::backend::EngineJob;
use crate::error::{Error, Result};

fn err(msg: String) -> Error {
    Error::Backend {
        backend: "ort-trt",
        msg,
    }
}

/// A TensorRT EP configured with `options` (key/value provider options), failing
/// instead of silently falling back to CPU.
pub fn tensorrt_ep(options: &[(String, String)]) -> c3_onnx::ort::ep::ExecutionProviderDispatch {
    let mut ep = TensorRT::default();
    for (k, v) in options {
        ep = ep.with_arbitrary_config(k, v);
    }
    ep.build().error_on_failure()
}

/// A session on the TensorRT EP only: nodes TensorRT cannot take are an error, not a
/// silent CPU fallback that would ship a half-accelerated deployment.
pub fn trt_session(onnx: &Path, options: &[(String, String)]) -> Result<Session> {
    let env = c3_onnx::ort_env::init_ort().map_err(|e| err(e.to_string()))?;
    let available = TensorRT::is_available().map_err(|e| err(e.to_string()))?;
    if !available {
        return Err(err(format!(
            "the ONNX Runtime library {} has no TensorRT execution provider; install onnxruntime-gpu and point ORT_DYLIB_PATH at its libonnxruntime.so",
            c3_onnx::ort_env::dylib_path().display()
        )));
    }
    let on = |e: String| err(format!("{}: {e}", onnx.display()));
    Session::builder(env)
        .map_err(|e| on(e.to_string()))?
        .with_disable_cpu_fallback()
        .map_err(|e| on(e.to_string()))?
        .with_execution_providers([tensorrt_ep(options)])
        .map_err(|e| on(e.to_string()))?
        .commit_from_file(onnx)
        .map_err(|e| on(e.to_string()))
}

/// Builds one engine: with explicit profile shapes the EP builds at session creation,
/// fills the engine and timing caches and writes the EP-context model.
pub fn build_engine(job: &EngineJob, plan_dir: &Path) -> Result<()> {
    let options = job
        .ort_options
        .as_deref()
        .ok_or_else(|| err(format!("{}: no provider options configured", job.name)))?;
    tracing::info!(engine = %job.name, "ONNX Runtime TensorRT EP: building");
    drop(trt_session(&job.onnx, options)?);
    let ctx = plan_dir.join(&job.output);
    if !ctx.is_file() {
        return Err(err(format!(
            "{}: session built but no EP-context model {} was written",
            job.name,
            ctx.display()
        )));
    }
    Ok(())
}
