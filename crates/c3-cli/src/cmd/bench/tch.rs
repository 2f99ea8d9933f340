//! The tch reference's rows of `c3 bench` (feature `torch`): the same documents,
//! the same per-step work as the runtime's (embed the token, one cached decoder
//! step, logits to the host, greedy pick).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use c3_core::generation::greedy_pick;
use c3_runtime::bench::memory::{self, reset_peak_rss};
use c3_torch::tch::{Device, Tensor};
use c3_torch::{KvCache, TorchCascade};
use serde_json::{Value, json};

use super::{MIB, enough_runs, fixed, median_secs};

/// Peak resident set size in MiB since the last reset.
fn peak_rss_mib() -> Option<f64> {
    memory::peak_rss().map(|b| b as f64 / MIB)
}

pub(super) fn bench_tch(ckpt: &Path, docs: &[Vec<u32>], k: usize, r: usize) -> Result<Value> {
    let _ = reset_peak_rss();
    let c = TorchCascade::load(ckpt, Device::Cpu)?;
    let compress = median_secs(r, || c.compress_ids(docs).map(drop).map_err(Into::into))?;
    let lat = c.compress_ids(&docs[..1])?;
    let ttft = median_secs(r, || {
        let l = c.compress_ids(&docs[..1])?;
        c3_torch::generate(&c.model, &c.prompt, &l, &fixed(1))?;
        Ok(())
    })?;
    // The same per-step work as the runtime's: embed the token, one cached decoder
    // step, logits to the host, greedy pick.
    let step1 = {
        let mut per = Vec::new();
        let t_start = Instant::now();
        while enough_runs(per.len(), r, t_start) {
            let t = c3_torch::tch::no_grad(|| -> Result<f64> {
                let mut cache = KvCache::new(c.model.model.layers.len());
                // Prefill fills the cache; its output is not needed here.
                let _ = c
                    .model
                    .decode_hidden(&c.model.prompt_embeds(&c.prompt, &lat), &mut cache);
                let mut tok = Tensor::from_slice(&[0i64]).view([1, 1]);
                let t0 = Instant::now();
                for _ in 0..k - 1 {
                    let h = c
                        .model
                        .decode_hidden(&c.model.embed_decoder(&tok), &mut cache);
                    let logits = Vec::<f32>::try_from(c.model.logits(&h).view([-1]))?;
                    let next = greedy_pick(&logits, &[]);
                    tok = Tensor::from_slice(&[next as i64]).view([1, 1]);
                }
                Ok(t0.elapsed().as_secs_f64() / (k - 1) as f64)
            })?;
            per.push(t);
        }
        per.sort_by(f64::total_cmp);
        per[per.len() / 2]
    };
    Ok(json!({
        "backend": "tch",
        "docs_per_second": docs.len() as f64 / compress,
        "time_to_first_token_ms": ttft * 1e3,
        "decode_tokens_per_second_b1": 1.0 / step1,
        "peak_rss_mib": peak_rss_mib(),
    }))
}
