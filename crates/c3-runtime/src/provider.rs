//! Execution providers: CPU by default, CUDA or TensorRT on request. A requested GPU
//! provider that cannot be registered is an error unless fallback is allowed: a
//! production deployment must not silently run on the CPU.

use std::path::{Path, PathBuf};

use c3_core::{DType, KvCache};
use c3_onnx::ort::ep::{self, ExecutionProvider};
use c3_onnx::ort::session::Session;
use c3_onnx::ort::session::builder::SessionBuilder;

use crate::error::{Error, Result, one_line};

/// Where the models run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    /// TensorRT through ONNX Runtime, with engine and timing caches in `cache_dir`.
    TensorRt {
        cache_dir: Option<PathBuf>,
    },
}

impl Provider {
    /// Parses `cpu`, `cuda` or `tensorrt`.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "cpu" => Provider::Cpu,
            "cuda" => Provider::Cuda,
            "tensorrt" | "trt" => Provider::TensorRt { cache_dir: None },
            other => {
                return Err(Error::Input(format!(
                    "unknown execution provider `{other}` (expected cpu, cuda or tensorrt)"
                )));
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt { .. } => "tensorrt",
        }
    }
}

/// Refuses an export `provider` cannot run as exported, before any session exists (so
/// this holds without a GPU): a shared-buffer decoder is ONNX Runtime's
/// GroupQueryAttention, whose CUDA kernels (also what TensorRT hands it to) are
/// fp16/bf16 only, so an fp32 one would not run on the GPU. `dir` is the export.
pub(crate) fn check_export(
    dir: &Path,
    provider: &Provider,
    kv_cache: KvCache,
    dtype: DType,
) -> Result<()> {
    let gpu = matches!(provider, Provider::Cuda | Provider::TensorRt { .. });
    if gpu && kv_cache == KvCache::SharedBuffer && dtype == DType::F32 {
        return Err(Error::export(
            dir,
            format!(
                "an fp32 export with kv_cache `shared_buffer` cannot run on {} (ONNX Runtime's CUDA GroupQueryAttention is fp16/bf16 only): export with `--dtype fp16` or `--dtype bf16`, or with `--kv-cache concat`",
                provider.name()
            ),
        ));
    }
    Ok(())
}

/// Builds a session for `path` on `provider`, with `threads` intra-op threads (0 =
/// ONNX Runtime's default).
pub fn session(
    path: &Path,
    provider: &Provider,
    allow_fallback: bool,
    threads: usize,
) -> Result<Session> {
    let env = c3_onnx::ort_env::init_ort()?;
    let err = |e: c3_onnx::ort::Error| Error::Ort(format!("{}: {}", path.display(), one_line(&e)));
    let mut b: SessionBuilder = Session::builder(env).map_err(err)?;
    if threads > 0 {
        b = b.with_intra_threads(threads).map_err(|e| err(e.into()))?;
    }
    match provider {
        Provider::Cpu => {}
        Provider::Cuda => register(&mut b, ep::CUDA::default(), "cuda", allow_fallback)?,
        Provider::TensorRt { cache_dir } => {
            let mut trt = ep::TensorRT::default()
                .with_engine_cache(true)
                .with_timing_cache(true);
            if let Some(dir) = cache_dir {
                let d = dir.display().to_string();
                trt = trt
                    .with_engine_cache_path(d.clone())
                    .with_timing_cache_path(d);
            }
            register(&mut b, trt, "tensorrt", allow_fallback)?;
            // Nodes TensorRT does not take (e.g. GroupQueryAttention of a `--target ort`
            // export) then run on CUDA rather than on the CPU, as ONNX Runtime's
            // TensorRT documentation recommends. Best effort: TensorRT itself was
            // checked above.
            if ep::CUDA::is_available().unwrap_or(false) {
                let _ = ep::CUDA::default().register(&mut b);
            }
        }
    }
    // The file, as this runtime runs it, is what cannot be used (e.g. a half-precision
    // export on the CPU, which lacks some fp16 kernels): named like any export error.
    b.commit_from_file(path).map_err(|e| {
        let msg = format!("ONNX Runtime cannot load the model: {}", one_line(&e));
        Error::export(path, msg)
    })
}

fn register<E: ExecutionProvider>(
    b: &mut SessionBuilder,
    ep: E,
    name: &str,
    allow_fallback: bool,
) -> Result<()> {
    let available = E::is_available().unwrap_or(false);
    let res = if available {
        ep.register(b).map_err(|e| one_line(&e))
    } else {
        Err(format!(
            "this ONNX Runtime build ({}) has no {name} execution provider (install a GPU build of ONNX Runtime 1.31 and set ORT_DYLIB_PATH)",
            c3_onnx::ort_env::dylib_path().display()
        ))
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if allow_fallback => {
            tracing::warn!("{e}; falling back to the CPU (--allow-fallback)");
            Ok(())
        }
        Err(e) => Err(Error::Ort(format!(
            "execution provider `{name}` requested: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp32_shared_buffer_is_refused_on_gpu_providers_only() {
        let dir = Path::new("export");
        let trt = Provider::TensorRt { cache_dir: None };
        for p in [Provider::Cuda, trt.clone()] {
            let err = check_export(dir, &p, KvCache::SharedBuffer, DType::F32)
                .expect_err(p.name())
                .to_string();
            assert!(
                err.contains(p.name())
                    && err.contains("--dtype fp16")
                    && err.contains("--kv-cache concat")
                    && err.starts_with("export: ")
                    && !err.contains('\n'),
                "{err}"
            );
        }
        check_export(dir, &Provider::Cpu, KvCache::SharedBuffer, DType::F32).unwrap();
        for ty in [DType::F16, DType::BF16] {
            check_export(dir, &Provider::Cuda, KvCache::SharedBuffer, ty).unwrap();
            check_export(dir, &trt, KvCache::SharedBuffer, ty).unwrap();
        }
        check_export(dir, &Provider::Cuda, KvCache::Concat, DType::F32).unwrap();
        check_export(dir, &trt, KvCache::Concat, DType::F32).unwrap();
    }
}
