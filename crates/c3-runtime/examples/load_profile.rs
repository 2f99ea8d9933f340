//! Where loading an export's time goes: each model's ONNX Runtime session created
//! with the runtime's settings and with the settings that could shorten it
//! (prepacking off, fewer graph optimizations), and what a decode step costs after
//! each (a faster load that slows every step is no gain).
//! Run: `cargo run --release -p c3-runtime --example load_profile EXPORT_DIR`

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use c3_core::FileCheck;
use c3_onnx::ort::session::Session;
use c3_onnx::ort::session::builder::GraphOptimizationLevel;
use c3_runtime::{C3Runtime, RuntimeOptions};

fn open(path: &Path, prepack: bool, level: GraphOptimizationLevel) -> Result<(Session, f64)> {
    let env = c3_onnx::ort_env::init_ort()?;
    let t = Instant::now();
    let e = |e: c3_onnx::ort::Error| anyhow::anyhow!("{e}");
    let s = Session::builder(env)
        .map_err(e)?
        .with_intra_threads(2)
        .map_err(|x| e(x.into()))?
        .with_prepacking(prepack)
        .map_err(|x| e(x.into()))?
        .with_optimization_level(level)
        .map_err(|x| e(x.into()))?
        .commit_from_file(path)
        .map_err(e)?;
    Ok((s, t.elapsed().as_secs_f64()))
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: load_profile EXPORT_DIR")?;
    let dir = Path::new(&dir);
    let t = Instant::now();
    let rt = C3Runtime::load(dir, RuntimeOptions::default())?;
    println!("C3Runtime::load: {:.2} s", t.elapsed().as_secs_f64());
    for check in [FileCheck::Quick, FileCheck::Full] {
        let t = Instant::now();
        rt.manifest.verify_files(dir, check)?;
        println!("  file check {check:?}: {:.2} s", t.elapsed().as_secs_f64());
    }
    drop(rt);
    let m = c3_core::ExportManifest::load(dir)?.0;
    for (name, file) in [
        ("encoder", &m.models.encoder.file),
        ("embed_tokens", &m.models.embed_tokens.file),
        ("decoder", &m.models.decoder.file),
    ] {
        for (label, prepack, level) in [
            (
                "all optimizations, prepacking",
                true,
                GraphOptimizationLevel::Level3,
            ),
            (
                "all optimizations, no prepacking",
                false,
                GraphOptimizationLevel::Level3,
            ),
            (
                "basic optimizations, prepacking",
                true,
                GraphOptimizationLevel::Level1,
            ),
            (
                "no optimizations, no prepacking",
                false,
                GraphOptimizationLevel::Disable,
            ),
        ] {
            let (s, secs) = open(&dir.join(file), prepack, level)?;
            println!("{name:>12}: {secs:6.2} s  {label}");
            drop(s);
        }
    }
    Ok(())
}
