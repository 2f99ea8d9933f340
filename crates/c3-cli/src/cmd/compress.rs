//! `c3 compress` / `c3 decompress`: compress once, decode many times. Latents go to a
//! safetensors file that records the export it came from (crates/c3-runtime
//! `latent_file`); decompressing with another export is refused.

use std::path::PathBuf;

use anyhow::{Result, bail};
use c3_runtime::{C3Runtime, latent_file};
use serde_json::json;

use crate::input::read_text;

#[derive(clap::Args)]
pub struct CompressArgs {
    /// Export folder (made by `c3 export`).
    #[arg(long)]
    model: PathBuf,
    /// Text files to compress (`-` for stdin), one document each.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Latent file to write (safetensors).
    #[arg(short, long)]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn compress(a: CompressArgs) -> Result<()> {
    let rt = C3Runtime::load(&a.model, Default::default())?;
    let mut docs = Vec::new();
    for f in &a.files {
        let text = read_text(f)?;
        let ids = rt
            .document_ids(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        docs.push(ids);
    }
    let t0 = std::time::Instant::now();
    let lats = rt.compress(&docs)?;
    let secs = t0.elapsed().as_secs_f64();
    let sources: Vec<String> = a.files.iter().map(|f| f.display().to_string()).collect();
    latent_file::save(&a.out, &rt, &lats, &sources)?;
    let tokens: Vec<usize> = docs.iter().map(Vec::len).collect();
    if a.json {
        println!(
            "{}",
            json!({"out": a.out, "documents": docs.len(), "n_latents": rt.n_latents(), "text_tokens": tokens, "export_manifest_sha256": rt.manifest_sha256, "seconds": secs})
        );
    } else {
        eprintln!(
            "{} documents ({} text tokens) -> {} x {} latents in {:.0} ms -> {}",
            docs.len(),
            tokens.iter().sum::<usize>(),
            docs.len(),
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
    /// Upper bound on generated tokens per document (default: its token count + 32).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// `no_repeat_ngram_size` (spec default 20; 0 disables).
    #[arg(long, default_value_t = 20)]
    no_repeat_ngram_size: usize,
    #[arg(long)]
    json: bool,
}

pub fn decompress(a: DecompressArgs) -> Result<()> {
    let rt = C3Runtime::load(&a.model, Default::default())?;
    let file = latent_file::load(&a.latents, &rt)?;
    let mut out = Vec::new();
    for (lat, source) in file.docs.iter().zip(&file.sources) {
        let mut cfg = rt.reference_generation();
        cfg.no_repeat_ngram_size = a.no_repeat_ngram_size;
        cfg.max_new_tokens = match a.max_new_tokens {
            Some(0) => bail!("--max-new-tokens must be at least 1"),
            Some(k) => k,
            None => (lat.text_tokens + 32).min(4096),
        };
        let g = rt.generate(&[lat], &cfg, &mut |_, _| {})?.remove(0);
        let text = rt.tokenizer.decode(&g.ids)?.trim().to_string();
        out.push(
            json!({"source": source, "text": text, "output_ids": g.ids, "finish_reason": g.finish}),
        );
        if !a.json {
            println!("{text}");
        }
    }
    if a.json {
        println!("{}", serde_json::Value::Array(out));
    }
    Ok(())
}
