//! What the process holds in memory, from Linux's `/proc/self`, for benchmarks: the
//! peak resident set since a reset, and the peak of a piece of work split into
//! anonymous memory (every tensor ONNX Runtime allocates: the activations) and
//! file-backed pages (the weights, which ONNX Runtime maps from `*.onnx.data`: an
//! embedding row is paged in the first time a token needs it, so a long text grows
//! the resident set without any activation). `None` where `/proc` is not Linux's.

/// A field of `/proc/self/status` (reported in kB) in bytes.
fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Resets the kernel's high-water mark of the resident set to its current size.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The resident set's high-water mark (`VmHWM`) in bytes.
pub fn peak_rss() -> Option<u64> {
    status_bytes("VmHWM")
}

/// What a piece of work added to the resident set at its peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeakGrowth {
    /// Anonymous memory: allocations.
    pub anon: u64,
    /// File-backed pages mapped in during the work.
    pub file: u64,
}

/// Runs `f` and measures its [`PeakGrowth`]: the kernel's high-water mark (reset
/// first, so no short-lived allocation is missed) minus the resident set before,
/// less the file-backed pages it added (which are only ever added here: nothing
/// unmaps weights while it runs).
pub fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, Option<PeakGrowth>) {
    let before = reset_peak_rss()
        .then(|| Some((status_bytes("VmRSS")?, status_bytes("RssFile")?)))
        .flatten();
    let out = f();
    let growth = before.and_then(|(rss0, file0)| {
        let file = status_bytes("RssFile")?.saturating_sub(file0);
        let total = peak_rss()?.saturating_sub(rss0);
        Some(PeakGrowth {
            anon: total.saturating_sub(file),
            file,
        })
    });
    (out, growth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_shows_as_anonymous_growth() {
        if peak_rss().is_none() {
            return; // not Linux
        }
        const MIB: u64 = 1 << 20;
        let (_, g) = peak_growth(|| {
            let v = vec![1u8; 64 * MIB as usize];
            std::hint::black_box(&v);
        });
        // The process's peak is measured: tests running beside this one can free
        // memory meanwhile (measured: 59.5 of 64 MiB), so ask for most of the
        // allocation, not all of it.
        let g = g.expect("Linux reports the peak");
        assert!(g.anon >= 40 * MIB, "{g:?}");
    }
}
