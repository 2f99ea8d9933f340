//! Peak memory of encoding one long document, per export, in one run: what
//! `compress` adds to the process while it encodes, split into anonymous memory
//! (the activations: every tensor ONNX Runtime allocates) and file-backed pages
//! (the weights, memory-mapped from `*.onnx.data`: the embedding rows a long text
//! touches for the first time are paged in, which `max RSS` counts but which are
//! neither activations nor private to the process).
//!
//! Linux only. The peak is the kernel's own high-water mark of the resident set
//! (`VmHWM`, reset to the current size before the run by writing 5 to
//! `/proc/self/clear_refs`), so no short-lived allocation is missed; file-backed
//! pages are only added during a run (nothing here unmaps weights), so the peak's
//! file-backed part is the growth of `RssFile` by the end.
//! Run: `cargo run --release -p c3-runtime --example encoder_memory EXPORT_DIR... TEXT_FILE`

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use c3_runtime::{C3Runtime, RuntimeOptions};

/// A field of `/proc/self/status` in bytes.
fn status(key: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .with_context(|| format!("{key} not in /proc/self/status"))?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// Runs `f` and returns the peak growth of anonymous and of file-backed memory.
fn peak_during<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, u64, u64)> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;
    let (rss0, file0) = (status("VmRSS")?, status("RssFile")?);
    let out = f()?;
    let file = status("RssFile")?.saturating_sub(file0);
    let total = status("VmHWM")?.saturating_sub(rss0);
    Ok((out, total.saturating_sub(file), file))
}

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
        let mut ids = rt.document_ids(&text)?;
        ids.truncate(rt.manifest.max_text_tokens);
        // A short run first, so what is measured is what the length adds, not the
        // first run's one-off allocations.
        rt.compress(&[ids[..84.min(ids.len())].to_vec()])?;
        let t = Instant::now();
        let (_, anon, file) = peak_during(|| Ok(rt.compress(std::slice::from_ref(&ids))?))?;
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
