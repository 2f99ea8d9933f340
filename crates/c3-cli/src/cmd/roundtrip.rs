//! `c3 roundtrip`: text -> latents -> text, with compression ratio and precision.

use std::path::PathBuf;

use anyhow::{Result, bail};
use c3_core::metrics::{char_precision, word_precision};
use c3_core::{C3Tokenizer, deps};
use serde_json::json;

use crate::backend::ModelArgs;
use crate::input::read_text;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Text file to compress, or `-` for stdin.
    file: PathBuf,
    /// Upper bound on generated tokens (default: the text's token count + 32, at most 4096).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// `no_repeat_ngram_size` (spec default 20; 0 disables).
    #[arg(long, default_value_t = 20)]
    no_repeat_ngram_size: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let text = read_text(&a.file)?;
    let cascade = a.model.open()?;
    let mut gen_cfg = cascade.reference_generation();
    gen_cfg.no_repeat_ngram_size = a.no_repeat_ngram_size;
    let n_text = cascade.tokenizer().encode(&text)?.len();
    gen_cfg.max_new_tokens = match a.max_new_tokens {
        Some(0) => bail!("--max-new-tokens must be at least 1"),
        Some(k) => k,
        // Reconstruction needs about as many tokens as the text; the margin lets a
        // model that paraphrases finish, and the cap keeps the spec's maximum.
        None => (n_text + 32).min(4096),
    };
    let r = cascade.roundtrip(&text, &gen_cfg)?;
    let n = cascade.n_latents();
    let qwen_tokens = qwen_token_count(&text);
    let reference = text.trim();
    let new_tokens = r.generation.ids.len();
    let v = json!({
        "text": r.text,
        "output_ids": r.generation.ids,
        "finish_reason": r.generation.finish,
        "text_tokens": r.text_ids.len(),
        "latent_tokens": n,
        "compression": r.text_ids.len() as f64 / n as f64,
        "qwen_text_tokens": qwen_tokens,
        "compression_qwen": qwen_tokens.map(|q| q as f64 / n as f64),
        "char_precision": char_precision(reference, &r.text),
        "word_precision": word_precision(reference, &r.text),
        "encode_seconds": r.encode_seconds,
        "decode_seconds": r.decode_seconds,
        "decode_tokens_per_second": new_tokens as f64 / r.decode_seconds.max(1e-9),
        "backend": cascade.name(),
    });
    if a.json {
        println!("{v}");
        return Ok(());
    }
    println!("{}", r.text);
    eprintln!(
        "\n{} text tokens -> {n} latents ({:.1}x{}), char precision {:.1}%, word precision {:.1}%, encode {:.0} ms, decode {} tokens in {:.0} ms ({:?})",
        r.text_ids.len(),
        r.text_ids.len() as f64 / n as f64,
        qwen_tokens
            .map(|q| format!(", {:.1}x in Qwen tokens", q as f64 / n as f64))
            .unwrap_or_default(),
        100.0 * char_precision(reference, &r.text),
        100.0 * word_precision(reference, &r.text),
        r.encode_seconds * 1e3,
        new_tokens,
        r.decode_seconds * 1e3,
        r.generation.finish,
    );
    Ok(())
}

/// Text length in Qwen tokens (the paper's unit), when the Qwen vocabulary is installed.
pub fn qwen_token_count(text: &str) -> Option<usize> {
    let path = deps::qwen_tiktoken().ok()?;
    let tok = C3Tokenizer::from_tiktoken(&path).ok()?;
    tok.encode(text).ok().map(|ids| ids.len())
}
