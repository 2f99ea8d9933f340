//! `c3 init`: a random-weight checkpoint in the release layout.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use c3_core::DType;
use c3_core::presets::{Preset, checkpoint_size, init_checkpoint_with, unknown_preset};
use c3_export::Progress;
use c3_export::bars::StderrProgress;

#[derive(clap::Args)]
pub struct Args {
    /// `tiny` (tests, demos), `c3-0.5b-shape` (Qwen2.5-0.5B shapes for both LLMs:
    /// CPU latency benchmarks) or `c3-release-shape` (1.5B encoder + 3B decoder shapes).
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Storage dtype: fp32, fp16 or bf16 (default: bf16 for the release shape, else fp32).
    #[arg(long)]
    dtype: Option<String>,
    /// Replace an existing checkpoint at OUT.
    #[arg(long)]
    force: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
    /// Output folder.
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let preset = Preset::parse(&a.preset).ok_or_else(|| unknown_preset(&a.preset))?;
    let dtype = match &a.dtype {
        Some(s) => DType::parse(s)
            .ok_or_else(|| anyhow!("unknown dtype `{s}` (expected fp32, fp16 or bf16)"))?,
        None if preset == Preset::ReleaseShape => DType::BF16,
        None => DType::F32,
    };
    let t = std::time::Instant::now();
    // The release shape writes ~9 GB: the export's bytes/ETA bar on a terminal.
    let progress = StderrProgress::new();
    let (tensors, bytes) = checkpoint_size(preset, dtype);
    progress.write_started(tensors, bytes);
    let cfg = init_checkpoint_with(preset, a.seed, dtype, &a.out, a.force, &|b| {
        progress.tensor_written(b)
    });
    progress.finished();
    let cfg = cfg?;
    if a.json {
        let v = serde_json::json!({
            "out": a.out, "preset": a.preset, "seed": a.seed, "dtype": dtype.name(),
            "latent_tokens": cfg.n_latents(), "seconds": t.elapsed().as_secs_f64(),
        });
        println!("{v}");
    } else {
        println!(
            "wrote {} ({} preset, {dtype}, seed {}) in {:.1}s",
            a.out.display(),
            a.preset,
            a.seed,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
