//! Peak memory of encoding one long document, per export, in one run: what
//! `compress` adds to the process while it encodes, split into anonymous memory
//! (the activations: every tensor ONNX Runtime allocates) and file-backed pages
//! (the weights, memory-mapped from `*.onnx.data`: the embedding rows a long text
//! touches for the first time are paged in, which `max RSS` counts but which are
//! neither activations nor private to the process).
//!
//! Linux only (`c3_runtime::bench::memory`: the kernel's own high-water mark, reset before
//! the run, so no short-lived allocation is missed). `c3 bench --doc-tokens N`
//! reports the same figure for one export.
//! Run: `cargo run --release -p c3-runtime --example encoder_memory EXPORT_DIR... TEXT_FILE`

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use c3_runtime::bench::memory::{PeakGrowth, peak_growth};
use c3_runtime::{C3Runtime, RuntimeOptions};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((text, exports)) = args.split_last().filter(|(_, e)| !e.is_empty()) else {
        bail!("usage: encoder_memory EXPORT_DIR... TEXT_FILE");
    };
    let text = std::fs::read_to_string(text).with_context(|| format!("reading {text}"))?;
    const MIB: f64 = (1 << 20) as f64;
    println!("export | tokens | activations (anon) MiB | weight pages touched (file) MiB | s");
    for dir in exports {
        let rt = C3Runtime::load(Path::new(dir), RuntimeOptions::default())?;
        let ids = rt.document_ids(&text)?;
        let max = rt.manifest.max_text_tokens;
        anyhow::ensure!(
            ids.len() <= max,
            "the text has {} tokens, over {dir}'s encoder limit of {max}: give a shorter one",
            ids.len()
        );
        // A short run first, so what is measured is what the length adds, not the
        // first run's one-off allocations.
        rt.compress(&[ids[..84.min(ids.len())].to_vec()])?;
        let t = Instant::now();
        let (out, growth) = peak_growth(|| rt.compress(std::slice::from_ref(&ids)));
        out?;
        let PeakGrowth { anon, file } = growth.context("no /proc/self/status (not Linux)")?;
        println!(
            "{dir} | {} | {:.0} | {:.0} | {:.1}",
            ids.len(),
            anon as f64 / MIB,
            file as f64 / MIB,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
