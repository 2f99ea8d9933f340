//! `c3 roundtrip`: text of any length -> windows -> latents -> text, with
//! compression ratio, precision and every window's outcome.

use std::path::PathBuf;

use anyhow::{Result, bail};
use c3_core::metrics::{char_precision, word_precision};
use c3_core::report::{RoundtripInfo, roundtrip_json};
use c3_core::window::WindowEnd;
use c3_core::{C3Tokenizer, WindowReport, deps};

use crate::backend::{ModelArgs, cascade_error};
use crate::input::read_text;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Text file to compress (any length), or `-` for stdin.
    file: PathBuf,
    /// Window length in model tokens (default: the model's own; longer documents are
    /// split into windows, each compressed to N latents).
    #[arg(long)]
    window: Option<usize>,
    /// Upper bound on generated tokens per window (default: the window's token count
    /// plus a quarter and 8).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// `no_repeat_ngram_size` (spec default 20; 0 disables).
    #[arg(long, default_value_t = 20)]
    no_repeat_ngram_size: usize,
    /// The task after the latents in the decoder prompt, for a model trained to
    /// answer it (default: the prompt the model was exported with).
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// One line on a window that stopped early or ran to its limit.
pub fn window_warning(r: &WindowReport) -> String {
    let w = &r.window;
    let what = if r.end == WindowEnd::Limit {
        "ran to its token limit (output may be truncated; raise --max-new-tokens)"
    } else {
        "stopped before giving back all its tokens"
    };
    format!(
        "window at tokens {}..{} {what}: {} of {} tokens generated",
        w.start,
        w.start + w.tokens,
        r.generated,
        w.tokens
    )
}

pub fn run(a: Args) -> Result<()> {
    if a.max_new_tokens == Some(0) {
        bail!("--max-new-tokens must be at least 1");
    }
    let text = read_text(&a.file)?;
    let cascade = a.model.open(a.window)?;
    let mut gen_cfg = cascade.generation().clone();
    gen_cfg.no_repeat_ngram_size = a.no_repeat_ngram_size;
    let plan = *cascade.plan();
    let prompt = (cascade.prompt_for(a.prompt.as_deref())).map_err(cascade_error)?;
    let r =
        (cascade.roundtrip(&text, &prompt, &gen_cfg, a.max_new_tokens)).map_err(cascade_error)?;
    let n = cascade.n_latents();
    let latents = n * r.windows.len();
    let qwen_tokens = qwen_token_count(&text);
    let reference = text.trim();
    let new_tokens: usize = r.windows.iter().map(|w| w.generated).sum();
    let v = roundtrip_json(
        &r,
        &RoundtripInfo {
            input: &text,
            window: plan.window,
            n_latents: n,
            qwen_text_tokens: qwen_tokens,
            backend: cascade.backend(),
        },
    );
    if a.json {
        println!("{v}");
        return Ok(());
    }
    println!("{}", r.text);
    for w in r
        .windows
        .iter()
        .filter(|w| w.short || w.end == WindowEnd::Limit)
    {
        eprintln!("warning: {}", window_warning(w));
    }
    eprintln!(
        "\n{} text tokens in {} window(s) of {} -> {latents} latents ({:.1}x{}), char precision {:.1}%, word precision {:.1}%, encode {:.0} ms, decode {new_tokens} tokens in {:.0} ms ({:?})",
        r.text_ids.len(),
        r.windows.len(),
        plan.window,
        r.text_ids.len() as f64 / latents as f64,
        qwen_tokens
            .map(|q| format!(", {:.1}x in Qwen tokens", q as f64 / latents as f64))
            .unwrap_or_default(),
        100.0 * char_precision(reference, &r.text),
        100.0 * word_precision(reference, &r.text),
        r.encode_seconds * 1e3,
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
