//! How a runtime is given a TensorRT plan folder (`--engine`) without depending on
//! the builder: the plan travels with the check that vouches for it. `c3_trt` makes
//! the check (plan.json against the export and this machine's GPU, TensorRT and
//! CUDA); the runtime calls it before any session exists, so every front-end refuses
//! a stale or foreign plan the same way, and the runtime links neither the builder
//! nor its command-line parser.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Checks a plan folder for one export on this machine.
pub trait PlanCheck: Send + Sync {
    /// The folder of engines TensorRT should load, or why the plan cannot be used
    /// (one line).
    fn check(&self, plan: &Path, export_manifest_sha256: &str) -> Result<PathBuf, String>;
}

/// A plan folder and the check it must pass at load.
#[derive(Clone)]
pub struct EnginePlan {
    pub dir: PathBuf,
    pub check: Arc<dyn PlanCheck>,
}

impl EnginePlan {
    pub fn new(dir: impl Into<PathBuf>, check: Arc<dyn PlanCheck>) -> Self {
        EnginePlan {
            dir: dir.into(),
            check,
        }
    }
}

impl std::fmt::Debug for EnginePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePlan")
            .field("dir", &self.dir)
            .finish()
    }
}
