//! Loading ONNX Runtime (`ort` with `load-dynamic`) once per process.
//!
//! The library is `$ORT_DYLIB_PATH` if set, else the copy `scripts/install-deps.sh`
//! puts in `.deps/onnxruntime/lib/` of this repository. ort allows one environment per
//! process, so [`init_ort`] keeps it in a static and hands out references: the
//! exporter's `--verify`, the runtime and the tests can all call it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;

use crate::error::{Error, Result};

static ENV: OnceLock<Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The ONNX Runtime shared library to load: `$ORT_DYLIB_PATH`, or the repository's
/// `.deps/onnxruntime/lib/libonnxruntime.so`.
pub fn dylib_path() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../.deps/onnxruntime/lib/libonnxruntime.so"
        )),
    }
}

/// Loads ONNX Runtime from [`dylib_path`] and creates the process-wide environment, or
/// returns the existing one. Fails with the path and the install command if the library
/// is missing.
pub fn init_ort() -> Result<&'static Environment> {
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    // A poisoned lock only means another thread panicked mid-init; the OnceLock is
    // still consistent, so carry on.
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let path = dylib_path();
    if !path.exists() {
        return Err(Error::OrtLibraryMissing { path });
    }
    let ort_err = |message: String| Error::Ort {
        path: path.clone(),
        message,
    };
    let env = ort::init_from(&path)
        .map_err(|e| ort_err(e.to_string()))?
        .with_name("c3")
        .build()
        .map_err(|e| ort_err(e.to_string()))?;
    tracing::debug!(path = %path.display(), "ONNX Runtime loaded");
    Ok(ENV.get_or_init(|| env))
}

/// A CPU session for the model at `path` (external data is resolved beside it), with
/// ONNX Runtime's default options. Errors name the model file.
pub fn cpu_session(path: impl AsRef<Path>) -> Result<Session> {
    let path = path.as_ref();
    let env = init_ort()?;
    let model_err = |e: ort::Error| Error::OrtSession {
        path: path.to_owned(),
        message: e.to_string(),
    };
    Session::builder(env)
        .map_err(model_err)?
        .commit_from_file(path)
        .map_err(model_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent() -> Result<()> {
        let a = init_ort()?;
        let b = init_ort()?;
        assert!(std::ptr::eq(a, b));
        Ok(())
    }
}
