//! `c3 compress` / `c3 decompress`: compress once, decode many times. Documents of
//! any length are windowed; the latents of every window go to a safetensors file that
//! records the export it came from and which windows make which document
//! (crates/c3-runtime `latent_file`); decompressing with another export is refused.

use std::path::PathBuf;

use anyhow::{Result, bail};
use c3_core::Cascade;
use c3_core::window::WindowEnd;
use c3_runtime::{C3Runtime, Decompressed, RuntimeOptions, latent_file};
use serde_json::json;

use crate::input::read_text;

#[derive(clap::Args)]
pub struct CompressArgs {
    /// Export folder (made by `c3 export`).
    #[arg(long)]
    model: PathBuf,
    /// Text files to compress (`-` for stdin), one document each, of any length.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Latent file to write (safetensors; written whole, then renamed into place).
    #[arg(short, long)]
    out: PathBuf,
    /// Replace an existing file at `--out`.
    #[arg(long)]
    force: bool,
    /// Window length in model tokens (default: the model's own).
    #[arg(long)]
    window: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn compress(a: CompressArgs) -> Result<()> {
    // Refused before the work, not after: a pipeline re-run must not clobber silently.
    if a.out.exists() && !a.force {
        bail!(
            "{} already exists; pass --force to replace it",
            a.out.display()
        );
    }
    let options = RuntimeOptions {
        window: a.window,
        ..Default::default()
    };
    let rt = C3Runtime::load(&a.model, options)?;
    let mut docs = Vec::new();
    for f in &a.files {
        let text = read_text(f)?;
        let ids = rt
            .document_ids(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        docs.push(ids);
    }
    let t0 = std::time::Instant::now();
    let c = rt.compress_documents(&docs)?;
    let secs = t0.elapsed().as_secs_f64();
    let sources: Vec<String> = a.files.iter().map(|f| f.display().to_string()).collect();
    latent_file::save(&a.out, &rt, &c, &sources)?;
    let windows: Vec<usize> = (0..docs.len())
        .map(|d| c.windows.iter().filter(|w| w.doc == d).count())
        .collect();
    if a.json {
        println!(
            "{}",
            json!({"out": a.out, "documents": docs.len(), "n_latents": rt.n_latents(), "text_tokens": c.doc_tokens, "windows": windows, "export_manifest_sha256": rt.manifest_sha256, "seconds": secs})
        );
    } else {
        eprintln!(
            "{} documents ({} text tokens) -> {} windows x {} latents in {:.0} ms -> {}",
            docs.len(),
            c.doc_tokens.iter().sum::<usize>(),
            c.windows.len(),
            rt.n_latents(),
            secs * 1e3,
            a.out.display()
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DecompressArgs {
    /// Export folder the latents were made with.
    #[arg(long)]
    model: PathBuf,
    /// Latent file from `c3 compress`.
    latents: PathBuf,
    /// Upper bound on generated tokens per window (default: the window's token
    /// count plus a quarter and 8).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// `no_repeat_ngram_size` (spec default 20; 0 disables).
    #[arg(long, default_value_t = 20)]
    no_repeat_ngram_size: usize,
    /// The task after the latents in the decoder prompt, for a model trained to
    /// answer it (default: the prompt the model was exported with).
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn decompress(a: DecompressArgs) -> Result<()> {
    if a.max_new_tokens == Some(0) {
        bail!("--max-new-tokens must be at least 1");
    }
    let rt = C3Runtime::load(&a.model, Default::default())?;
    let file = latent_file::load(&a.latents, &rt)?;
    let mut cfg = rt.reference_generation();
    cfg.no_repeat_ngram_size = a.no_repeat_ngram_size;
    let prompt = rt.prompt_for(a.prompt.as_deref())?;
    let Decompressed { docs, reports } =
        rt.decompress(&file.compressed, &prompt, &cfg, a.max_new_tokens)?;
    let mut out = Vec::new();
    for (d, (ids, source)) in docs.iter().zip(&file.sources).enumerate() {
        let text = rt.tokenizer.decode_text(ids)?;
        let windows: Vec<_> = reports.iter().filter(|r| r.window.doc == d).collect();
        for r in windows
            .iter()
            .filter(|r| r.short || r.end == WindowEnd::Limit)
        {
            eprintln!(
                "warning: {source}: {}",
                crate::cmd::roundtrip::window_warning(r)
            );
        }
        if !a.json {
            println!("{text}");
        }
        out.push(json!({"source": source, "text": text, "output_ids": ids, "windows": windows}));
    }
    if a.json {
        println!("{}", serde_json::Value::Array(out));
    }
    Ok(())
}
