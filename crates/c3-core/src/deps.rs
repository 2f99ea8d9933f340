//! Where the project's installed native dependencies and data files live
//! (`.deps/`, filled by `scripts/install-deps.sh`). `C3_DEPS_DIR` at run time
//! overrides the folder baked in at build time.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The dependency folder.
pub fn deps_dir() -> PathBuf {
    std::env::var_os("C3_DEPS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("C3_DEPS_DIR")))
}

fn require(rel: &str) -> Result<PathBuf> {
    let p = deps_dir().join(rel);
    if p.exists() {
        Ok(p)
    } else {
        Err(Error::Input(format!(
            "{} is missing: run `scripts/install-deps.sh` to install it",
            p.display()
        )))
    }
}

/// The release's Qwen tiktoken vocabulary.
pub fn qwen_tiktoken() -> Result<PathBuf> {
    require("tokenizers/qwen.tiktoken")
}

/// Qwen2.5's `tokenizer.json` (same ordinary ids as `qwen.tiktoken`).
pub fn qwen_tokenizer_json() -> Result<PathBuf> {
    require("tokenizers/qwen2.5-tokenizer.json")
}

/// The ONNX Runtime shared library.
pub fn onnxruntime_lib() -> Result<PathBuf> {
    require("onnxruntime/lib/libonnxruntime.so")
}
