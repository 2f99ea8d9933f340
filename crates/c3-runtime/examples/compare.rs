//! Exports of one checkpoint side by side, taking turns in one run: how each compares
//! with the first (the baseline: an older exporter's export, or fp32 beside
//! quantized ones) on the same machine at the same moment, instead of against a
//! figure from another day (this VM's speed drifts by up to 30% between runs).
//!
//! For each export, with the latents of the same document:
//! - `decoder`: the decoder alone on the prompt's length of zero embeddings with an
//!   empty cache (what `c3 bench` calls the decoder prefill with N latents);
//! - `whole`: a request's prefill end to end, the whole prompt run
//!   (`prefill_logits(.., false)`);
//! - `reuse`: the same starting from the prompt-prefix cache, as requests do;
//! - decode tokens/s at batch 1: 16 greedy steps after the prompt, timed from the
//!   first streamed token to the last (every step's work, the prefill excluded).
//!
//! Run: `cargo run --release -p c3-runtime --example compare BASELINE OTHER... [--rounds N]`

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use c3_core::GenerationConfig;
use c3_runtime::{C3Runtime, Latents, RuntimeOptions};

/// Tokens generated per decode measurement.
const STEPS: usize = 16;

const TEXT: &str = "The kernel keeps a list of every task that is ready to run and \
picks the next one by its virtual runtime, so that each task gets a fair share of \
the processor over time.";

struct Export {
    name: String,
    rt: C3Runtime,
    latents: Latents,
    /// Seconds per round: decoder alone, whole prompt, reusing the prefix, one
    /// decode step.
    times: [Vec<f64>; 4],
}

impl Export {
    fn load(dir: &str) -> Result<Self> {
        let rt = C3Runtime::load(Path::new(dir), RuntimeOptions::default())
            .with_context(|| format!("loading {dir}"))?;
        let ids = rt.document_ids(TEXT)?;
        let latents = rt.compress(&[ids])?.remove(0);
        rt.prefill_logits(&latents, true)?; // builds the prefix cache once
        Ok(Export {
            name: dir.to_owned(),
            rt,
            latents,
            times: Default::default(),
        })
    }

    fn round(&mut self) -> Result<()> {
        let (rt, lat) = (&self.rt, &self.latents);
        let prompt_len = rt.manifest.prompt.ids.len();
        let t = Instant::now();
        rt.decode_state(1, prompt_len)?.forward(
            c3_runtime::bench::zero_embeds(&rt, 1, prompt_len)?,
            prompt_len,
        )?;
        self.times[0].push(t.elapsed().as_secs_f64());
        for (i, reuse) in [(1, false), (2, true)] {
            let t = Instant::now();
            rt.prefill_logits(lat, reuse)?;
            self.times[i].push(t.elapsed().as_secs_f64());
        }
        let steps = GenerationConfig {
            max_new_tokens: STEPS,
            no_repeat_ngram_size: 0,
            stop_ids: vec![],
        };
        let mut stamps = Vec::with_capacity(STEPS);
        rt.generate(&[lat], rt.prompt(), &steps, &mut |_, _| {
            stamps.push(Instant::now())
        })?;
        let (Some(first), Some(last)) = (stamps.first(), stamps.last()) else {
            anyhow::bail!("{}: generated no tokens", self.name);
        };
        anyhow::ensure!(
            stamps.len() > 1,
            "{}: the context leaves room for one new token only",
            self.name
        );
        let per_step = (*last - *first).as_secs_f64() / (stamps.len() - 1) as f64;
        self.times[3].push(per_step);
        Ok(())
    }

    /// Median milliseconds of each figure.
    fn medians(&self) -> [f64; 4] {
        self.times.clone().map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2] * 1e3
        })
    }
}

fn main() -> Result<()> {
    let mut dirs = Vec::new();
    let mut rounds = 15;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => {
                let n = args.next().context("--rounds needs a number")?;
                rounds = n.parse().context("--rounds must be a number")?;
            }
            _ => dirs.push(a),
        }
    }
    anyhow::ensure!(rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(
        dirs.len() >= 2,
        "usage: compare BASELINE OTHER... [--rounds N]"
    );
    let mut exports = dirs
        .iter()
        .map(|d| Export::load(d))
        .collect::<Result<Vec<_>>>()?;
    // Decode is bound by memory bandwidth, which neighbours on a shared machine take
    // a share of: the machine's streaming read rate (best of a second) before and
    // after, so the run's state is on record beside its ratios.
    let bandwidth =
        || c3_runtime::bench::limits::read_bandwidth(512 << 20, 2, Duration::from_secs(1)) / 1e9;
    let before = bandwidth();
    for _ in 0..rounds {
        for e in exports.iter_mut() {
            e.round()?;
        }
    }
    println!(
        "streaming read bandwidth (2 threads): {before:.1} GB/s before, {:.1} GB/s after",
        bandwidth()
    );
    println!(
        "median of {rounds} rounds | decoder alone ms | whole prompt ms | reusing the prefix ms | decode tokens/s, batch 1"
    );
    for e in &exports {
        let [d, w, r, step] = e.medians();
        println!("{} | {d:.1} | {w:.1} | {r:.1} | {:.2}", e.name, 1e3 / step);
    }
    let [base_d, base_w, _, base_step] = exports[0].medians();
    for e in &exports[1..] {
        let [_, _, r, step] = e.medians();
        println!(
            "{} vs {}: prefill reusing the prefix / baseline decoder alone {:.2}x, / baseline whole prompt {:.2}x; decode tokens/s {:.2}x",
            e.name,
            exports[0].name,
            r / base_d,
            r / base_w,
            base_step / step
        );
    }
    Ok(())
}
