//! Fuzzing c3's parsers of untrusted bytes, on the stable toolchain: structure-aware
//! mutation of valid inputs (mutate.rs), every input timed, its largest allocation
//! measured (alloc.rs) and panics caught (run.rs). The mutations start from real files
//! of every kind and aim at the fields parsers trust (lengths, offsets, counts,
//! shapes). `cargo test -p c3-fuzz` runs every target briefly; `c3-fuzz --runs N`
//! runs them long (BENCHMARKS.md). The same targets run coverage-guided under AFL++
//! (`src/bin/c3-fuzz-afl.rs`, scripts/fuzz-afl.sh; cargo-fuzz would need nightly).

pub mod alloc;
pub mod mutate;
pub mod run;
pub mod targets;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target, its seeds and 1,500 mutants: no panic, hang or allocation past
    /// its limit (the short run of the test suite).
    #[test]
    fn every_target_survives_a_short_run() {
        let ctx = targets::Context::new().unwrap();
        let mut total = 0;
        for t in targets::all(&ctx) {
            let r = run::run(&t, 1500, 1, |_| {});
            for f in &r.findings {
                let path = run::save(t.name, f).unwrap();
                eprintln!("{}: {} {} ({})", t.name, f.kind, f.detail, path.display());
            }
            assert!(
                r.findings.is_empty(),
                "{}: {} findings",
                t.name,
                r.findings.len()
            );
            total += r.inputs;
        }
        assert!(total >= 8 * 1500);
    }

    /// The allocator sees a large allocation on this thread.
    #[test]
    fn the_allocator_reports_the_largest_request() {
        alloc::reset();
        let v = vec![0u8; 3 << 20];
        std::hint::black_box(&v);
        assert!(alloc::largest() >= 3 << 20);
        alloc::reset();
        assert!(alloc::largest() < 3 << 20);
    }
}
