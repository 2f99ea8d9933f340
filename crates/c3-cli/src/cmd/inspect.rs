//! `c3 inspect`: what a checkpoint holds; `--check` also scans every tensor for NaN,
//! ±Inf and values beyond an export dtype's range (the exporter's own health check).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use c3_core::checkpoint::health;
use c3_core::{C3Tokenizer, Checkpoint, DType, TensorStore};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint folder (release layout).
    checkpoint: PathBuf,
    /// Scan every tensor for NaN, ±Inf and values that overflow `--dtype`; fails
    /// (exit 1) naming the tensors, as `c3 export` would.
    #[arg(long)]
    check: bool,
    /// Export dtype `--check` checks the range against (fp16: |x| beyond 65504).
    #[arg(long, default_value = "fp32", value_parser = parse_dtype, requires = "check")]
    dtype: DType,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::parse(s).ok_or_else(|| format!("`{s}` is not fp32, fp16 or bf16"))
}

fn summary(store: &TensorStore) -> (u64, BTreeMap<String, usize>, usize) {
    let mut params = 0u64;
    let mut dtypes = BTreeMap::new();
    for n in store.names() {
        if let Ok(t) = store.get(n) {
            params += t.numel() as u64;
            *dtypes.entry(t.dtype.name().to_string()).or_insert(0) += 1;
        }
    }
    (params, dtypes, store.files().count())
}

pub fn run(a: Args) -> Result<()> {
    let ck = Checkpoint::open(&a.checkpoint)?;
    let tok = C3Tokenizer::from_dir(&a.checkpoint)?;
    tok.specials().check_config(&ck.config, tok.path())?;
    let (dp, dd, df) = summary(&ck.root);
    let (ep, ed, ef) = summary(&ck.llm1);
    let c = &ck.config;
    let check = a.check.then(|| health::scan(&ck, a.dtype, &mut |_, _| {}));
    if let Some(h) = check.as_ref().filter(|h| !h.is_healthy()) {
        bail!("checkpoint {}: {h}", a.checkpoint.display());
    }
    let mut v = json!({
        "checkpoint": a.checkpoint,
        "latent_tokens": c.n_latents(),
        "max_text_tokens": c.max_text_tokens(),
        "window_tokens": c.c3.window_tokens,
        "decoder": {"params": dp, "dtypes": dd, "files": df, "tied_lm_head": c.decoder.tie_word_embeddings,
                    "hidden": c.decoder.hidden_size, "layers": c.decoder.num_hidden_layers,
                    "heads": c.decoder.num_attention_heads, "kv_heads": c.decoder.num_key_value_heads,
                    "vocab": c.decoder.vocab_size, "max_positions": c.decoder.max_position_embeddings},
        "encoder": {"params": ep, "dtypes": ed, "files": ef, "tied_lm_head": c.encoder.tie_word_embeddings,
                    "hidden": c.encoder.hidden_size, "layers": c.encoder.num_hidden_layers,
                    "heads": c.encoder.num_attention_heads, "kv_heads": c.encoder.num_key_value_heads,
                    "vocab": c.encoder.vocab_size, "max_positions": c.encoder.max_position_embeddings},
        "total_params": dp + ep,
        "total_bytes": ck.total_bytes(),
        "tokenizer": {"kind": tok.kind_name(), "vocab": tok.vocab_size()},
    });
    if let Some(h) = &check {
        v["check"] = serde_json::to_value(h)?;
    }
    if a.json {
        println!("{v}");
        return Ok(());
    }
    println!("checkpoint   {}", a.checkpoint.display());
    println!(
        "latents      N = {} per window (the encoder takes up to {} tokens)",
        c.n_latents(),
        c.max_text_tokens()
    );
    match c.c3.window_tokens {
        Some(w) => println!(
            "window       {w} tokens (trained on windows of exactly this length: longer texts are split, shorter ones padded)"
        ),
        None => println!(
            "window       none recorded (trained on varying lengths): longer texts are split at the encoder limit"
        ),
    }
    for (name, m, p, d, f) in [
        ("decoder", &c.decoder, dp, &dd, df),
        ("encoder", &c.encoder, ep, &ed, ef),
    ] {
        println!(
            "{name:<12} {:.2}M params, hidden {}, {} layers, {}/{} heads, vocab {}, ctx {}, lm_head {}, dtypes {:?}, {} file(s)",
            p as f64 / 1e6,
            m.hidden_size,
            m.num_hidden_layers,
            m.num_attention_heads,
            m.num_key_value_heads,
            m.vocab_size,
            m.max_position_embeddings,
            if m.tie_word_embeddings {
                "tied"
            } else {
                "untied"
            },
            d,
            f
        );
    }
    println!(
        "total        {:.2}M params, {:.1} MB",
        (dp + ep) as f64 / 1e6,
        ck.total_bytes() as f64 / 1e6
    );
    println!(
        "tokenizer    {} ({} ids)",
        tok.kind_name(),
        tok.vocab_size()
    );
    if let Some(h) = &check {
        println!("check        {h}");
    }
    Ok(())
}
