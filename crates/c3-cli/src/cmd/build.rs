//! `c3 build` and `--engine` checks (TensorRT plans): wired to crates/c3-trt.

use std::path::Path;

use anyhow::Result;

/// Refuses a plan folder that does not fit the export or this machine.
pub fn check_engine(engine: &Path, _export: &Path) -> Result<()> {
    anyhow::bail!("{}: TensorRT plans are not wired yet", engine.display())
}
