//! Greedy generation on the tch model: prefill with the latents injected, then
//! KV-cached single-token steps, with the shared rules of `c3_core::generation`.

use tch::{Kind, Tensor};

use crate::c3::C3Model;
use crate::error::{Error, Result};
use crate::kv_cache::KvCache;
use c3_core::generation::greedy_pick;
use c3_core::{DecoderPrompt, FinishReason, Generated, GenerationConfig, NoRepeatNGram};

fn row_logits(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous())?)
}

/// Decodes each row of `projected` `[B, N, D_dec]` greedily. Rows that finish
/// early keep being fed their stop token (their outputs are ignored) so the batch
/// stays rectangular; generation ends when every row has finished.
pub fn generate(
    model: &C3Model,
    prompt: &DecoderPrompt,
    projected: &Tensor,
    cfg: &GenerationConfig,
) -> Result<Vec<Generated>> {
    let b = projected.size()[0] as usize;
    let ctx = model.config.decoder.max_position_embeddings;
    if prompt.ids.len() >= ctx {
        return Err(Error::Input(format!(
            "the prompt ({} tokens) fills the decoder context ({ctx})",
            prompt.ids.len()
        )));
    }
    let mut cache = KvCache::new(model.model.layers.len());
    let mut rules: Vec<NoRepeatNGram> = (0..b)
        .map(|_| NoRepeatNGram::new(cfg.no_repeat_ngram_size, &prompt.ids))
        .collect();
    let mut out: Vec<Option<Generated>> = vec![None; b];
    let mut ids: Vec<Vec<u32>> = vec![Vec::new(); b];
    tch::no_grad(|| -> Result<()> {
        let embeds = model.prompt_embeds(prompt, projected);
        let mut hidden = model.decode_hidden(&embeds, &mut cache);
        let mut pos = prompt.ids.len();
        loop {
            let last = hidden.narrow(1, hidden.size()[1] - 1, 1).squeeze_dim(1);
            let logits = model.logits(&last);
            let mut next = vec![0i64; b];
            for r in 0..b {
                if out[r].is_some() {
                    next[r] = cfg.stop_ids.first().copied().unwrap_or(0) as i64;
                    continue;
                }
                let tok = greedy_pick(&row_logits(&logits.get(r as i64))?, rules[r].banned());
                next[r] = tok as i64;
                if cfg.stop_ids.contains(&tok) {
                    out[r] = Some(Generated {
                        ids: std::mem::take(&mut ids[r]),
                        finish: FinishReason::Stop,
                    });
                    continue;
                }
                ids[r].push(tok);
                rules[r].push(tok);
                let finish = if ids[r].len() >= cfg.max_new_tokens {
                    Some(FinishReason::Length)
                } else if pos + 1 >= ctx {
                    Some(FinishReason::Context)
                } else {
                    None
                };
                if let Some(finish) = finish {
                    out[r] = Some(Generated {
                        ids: std::mem::take(&mut ids[r]),
                        finish,
                    });
                }
            }
            if out.iter().all(Option::is_some) {
                return Ok(());
            }
            let step = Tensor::from_slice(&next)
                .to_device(projected.device())
                .view([b as i64, 1]);
            hidden = model.decode_hidden(&model.embed_decoder(&step), &mut cache);
            pos += 1;
        }
    })?;
    Ok(out
        .into_iter()
        .map(|g| g.expect("every row finished"))
        .collect())
}
