//! The JSON summary of one round trip: what `c3 roundtrip --json` prints and what
//! the HTTP service's `/v1/roundtrip` answers. One function, so both stay the same.

use serde_json::{Value, json};

use crate::generation::Reconstruction;
use crate::metrics::{char_precision, word_precision};

/// What the caller knows beyond the reconstruction itself.
#[derive(Debug, Clone, Copy)]
pub struct RoundtripInfo<'a> {
    /// The input text as given (precision is measured against it, trimmed).
    pub input: &'a str,
    /// Window length in model tokens.
    pub window: usize,
    /// N, latents per window.
    pub n_latents: usize,
    /// The input's length in Qwen tokens (the paper's unit), when the caller has the
    /// Qwen vocabulary; `null` in the JSON otherwise.
    pub qwen_text_tokens: Option<usize>,
    /// The back-end's name.
    pub backend: &'a str,
}

/// The summary object, fields in this order: `text`, `output_ids`,
/// `finish_reason`, `text_tokens`, `window`, `n_windows`, `latent_tokens`,
/// `compression`, `qwen_text_tokens`, `compression_qwen`, `char_precision`,
/// `word_precision`, `encode_seconds`, `decode_seconds`,
/// `decode_tokens_per_second`, `windows`, `backend`.
pub fn roundtrip_json(r: &Reconstruction, info: &RoundtripInfo) -> Value {
    let latents = info.n_latents * r.windows.len();
    let reference = info.input.trim();
    let new_tokens: usize = r.windows.iter().map(|w| w.generated).sum();
    json!({
        "text": r.text,
        "output_ids": r.generation.ids,
        "finish_reason": r.generation.finish,
        "text_tokens": r.text_ids.len(),
        "window": info.window,
        "n_windows": r.windows.len(),
        "latent_tokens": latents,
        "compression": r.text_ids.len() as f64 / latents as f64,
        "qwen_text_tokens": info.qwen_text_tokens,
        "compression_qwen": info.qwen_text_tokens.map(|q| q as f64 / latents as f64),
        "char_precision": char_precision(reference, &r.text),
        "word_precision": word_precision(reference, &r.text),
        "encode_seconds": r.encode_seconds,
        "decode_seconds": r.decode_seconds,
        "decode_tokens_per_second": new_tokens as f64 / r.decode_seconds.max(1e-9),
        "windows": r.windows,
        "backend": info.backend,
    })
}
