//! A request's prefill on two exports of one checkpoint, taking turns in one run:
//! how an export made by an older exporter (the `BASELINE`) compares with a newer
//! one on the same machine at the same moment, instead of against a figure from
//! another day (this VM's speed drifts by up to 30% between runs).
//!
//! For each export, with the latents of the same document:
//! - `decoder`: the decoder alone on the prompt's length of zero embeddings with an
//!   empty cache (what `c3 bench` calls the decoder prefill with N latents);
//! - `whole`: a request's prefill end to end, the whole prompt run
//!   (`prefill_logits(.., false)`);
//! - `reuse`: the same starting from the prompt-prefix cache, as requests do.
//!
//! Run: `cargo run --release -p c3-runtime --example prefill_compare BASELINE NEW [ROUNDS]`

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use c3_runtime::{C3Runtime, Latents, RuntimeOptions};

const TEXT: &str = "The kernel keeps a list of every task that is ready to run and \
picks the next one by its virtual runtime, so that each task gets a fair share of \
the processor over time.";

struct Export {
    name: String,
    rt: C3Runtime,
    latents: Latents,
    /// Seconds per round: decoder alone, whole prompt, reusing the prefix.
    times: [Vec<f64>; 3],
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
        let plen = rt.manifest.prompt.ids.len();
        let t = Instant::now();
        rt.decode_state(1, plen)?
            .forward(rt.zero_embeds(1, plen)?, plen)?;
        self.times[0].push(t.elapsed().as_secs_f64());
        for (i, reuse) in [(1, false), (2, true)] {
            let t = Instant::now();
            rt.prefill_logits(lat, reuse)?;
            self.times[i].push(t.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Median milliseconds of each figure.
    fn medians(&self) -> [f64; 3] {
        self.times.clone().map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2] * 1e3
        })
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, new, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: prefill_compare BASELINE NEW [ROUNDS]");
    };
    let rounds: usize = match rest.first() {
        Some(r) => r.parse().context("ROUNDS must be a number")?,
        None => 15,
    };
    let mut exports = [Export::load(base)?, Export::load(new)?];
    for _ in 0..rounds {
        for e in exports.iter_mut() {
            e.round()?;
        }
    }
    let base_ms = exports[0].medians();
    println!("median of {rounds} rounds, ms | decoder alone | whole prompt | reusing the prefix");
    for e in &exports {
        let [d, w, r] = e.medians();
        println!(
            "{} ({} prompt positions) | {d:.1} | {w:.1} | {r:.1}",
            e.name,
            e.rt.manifest.prompt.ids.len()
        );
    }
    let [_, _, new_reuse] = exports[1].medians();
    println!(
        "new, reusing the prefix / baseline decoder alone: {:.2}x; / baseline whole prompt: {:.2}x",
        new_reuse / base_ms[0],
        new_reuse / base_ms[1]
    );
    Ok(())
}
