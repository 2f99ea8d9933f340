//! Where a decode step's time goes, at batch 1 and 8: the decoder run alone (cache
//! truncated back to a fixed length before each timed step), the greedy pick over the
//! vocabulary, and whole `generate` steps (best of 20 runs of 64 tokens).
//! Run: `cargo run --release -p c3-runtime --example step_profile EXPORT_DIR [THREADS]`

use std::time::Instant;

use anyhow::{Context, Result};
use c3_core::GenerationConfig;
use c3_core::generation::greedy_pick;
use c3_runtime::{C3Runtime, Latents, RuntimeOptions};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .context("usage: step_profile EXPORT_DIR [THREADS]")?;
    let threads = match args.next() {
        Some(t) => t.parse().context("THREADS must be a number")?,
        None => 2,
    };
    let rt = C3Runtime::load(
        dir.as_ref(),
        RuntimeOptions {
            threads,
            ..Default::default()
        },
    )?;
    let pos = 60.min(rt.manifest.max_context - 1);
    for b in [1usize, 8] {
        let mut st = rt.decode_state(b, pos + 1)?;
        st.forward(c3_runtime::bench::zero_embeds(&rt, b, pos)?, pos)?;
        let n = 2000;
        let (mut fwd, mut pick) = (0.0, 0.0);
        for _ in 0..n {
            st.truncate(pos)?;
            let e = c3_runtime::bench::zero_embeds(&rt, b, 1)?;
            let t = Instant::now();
            st.forward(e, 1)?;
            fwd += t.elapsed().as_secs_f64();
            let l = st.logits()?;
            let t = Instant::now();
            for r in 0..b {
                std::hint::black_box(greedy_pick(l.last(r), &[]));
            }
            pick += t.elapsed().as_secs_f64();
        }
        let us = |s: f64| s / n as f64 * 1e6;
        println!(
            "batch {b}: decoder step {:.1} us, greedy {:.1} us",
            us(fwd),
            us(pick)
        );
    }
    let text = "The quick brown fox jumps over the lazy dog and keeps on running.";
    let lat = rt.compress(&[rt.document_ids(text)?])?;
    let k = 64.min(rt.manifest.max_context - rt.manifest.prompt.ids.len() - 1);
    let cfg = GenerationConfig {
        max_new_tokens: k,
        no_repeat_ngram_size: 0,
        stop_ids: vec![],
    };
    for b in [1usize, 8] {
        let rows: Vec<&Latents> = (0..b).map(|_| &lat[0]).collect();
        let mut best = f64::MAX;
        for _ in 0..20 {
            let mut stamps = Vec::with_capacity(k);
            rt.generate(&rows, rt.prompt(), &cfg, &mut |r, _| {
                if r == 0 {
                    stamps.push(Instant::now())
                }
            })?;
            best = best.min((stamps[k - 1] - stamps[0]).as_secs_f64() / (k - 1) as f64);
        }
        println!("batch {b}: generate {:.1} us per step", best * 1e6);
    }
    Ok(())
}
