//! Execution providers: CPU by default, CUDA or TensorRT on request. A requested GPU
//! provider that cannot be registered is an error unless fallback is allowed: a
//! production deployment must not silently run on the CPU.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use c3_onnx::ort::ep::{self, ExecutionProvider};
use c3_onnx::ort::session::Session;
use c3_onnx::ort::session::builder::SessionBuilder;

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
            other => bail!("unknown execution provider `{other}` (expected cpu, cuda or tensorrt)"),
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

/// Builds a session for `path` on `provider`, with `threads` intra-op threads (0 =
/// ONNX Runtime's default).
pub fn session(
    path: &std::path::Path,
    provider: &Provider,
    allow_fallback: bool,
    threads: usize,
) -> Result<Session> {
    let env = c3_onnx::ort_env::init_ort()?;
    let err = |e: c3_onnx::ort::Error| anyhow::anyhow!("{}: {e}", path.display());
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
    b.commit_from_file(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: ONNX Runtime cannot load the model: {e}",
            path.display()
        )
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
        ep.register(b).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        Err(anyhow::anyhow!(
            "this ONNX Runtime build ({}) has no {name} execution provider (install a GPU build of ONNX Runtime 1.31 and set ORT_DYLIB_PATH)",
            c3_onnx::ort_env::dylib_path().display()
        ))
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if allow_fallback => {
            eprintln!("warning: {e}; falling back to the CPU (--allow-fallback)");
            Ok(())
        }
        Err(e) => Err(e).context(format!("execution provider `{name}` requested")),
    }
}
