//! `c3 build`: TensorRT engine plans under `trt-plans/` (crates/c3-trt), and the
//! check `--engine` makes before the runtime loads a plan folder.

use std::path::Path;

use anyhow::Result;
use c3_core::ExportManifest;

pub fn run(a: c3_trt::BuildArgs) -> Result<()> {
    let report = c3_trt::build(&a)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

/// Refuses a plan folder built for another export, GPU or TensorRT version.
pub fn check_engine(engine: &Path, export: &Path) -> Result<()> {
    let (_, hash) = ExportManifest::load(export)?;
    c3_trt::check_engine_dir(engine, &hash)?;
    Ok(())
}
