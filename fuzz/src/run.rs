//! Runs a target for a number of inputs: the seeds first, then mutants of them.
//! Each input is timed, its largest allocation measured and a panic caught; a
//! finding is written to `fuzz/findings/TARGET-HASH` (the input's bytes) so it can be
//! replayed and turned into a regression test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::alloc;
use crate::mutate::Mutator;
use crate::targets::Target;

/// An input slower than this is a hang.
pub const HANG: Duration = Duration::from_secs(5);

/// What went wrong with one input.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: &'static str,
    pub detail: String,
    pub input: Vec<u8>,
}

/// One target's run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub inputs: u64,
    pub seconds: f64,
    pub slowest: Duration,
    pub largest_alloc: usize,
    pub findings: Vec<Finding>,
}

/// Runs `target` on its seeds and `runs` mutants (seeded by `seed`).
pub fn run(target: &Target, runs: u64, seed: u64, mut progress: impl FnMut(u64)) -> Report {
    let mut m = Mutator::new(seed);
    let mut report = Report::default();
    let t0 = Instant::now();
    let seeds = &target.seeds;
    for i in 0..runs + seeds.len() as u64 {
        let input = match seeds.get(i as usize) {
            Some(s) => s.clone(),
            None => {
                let a = &seeds[m.below(seeds.len())];
                let b = &seeds[m.below(seeds.len())];
                m.mutate(a, b)
            }
        };
        alloc::reset();
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let took = t.elapsed();
        let largest = alloc::largest();
        report.inputs += 1;
        report.slowest = report.slowest.max(took);
        report.largest_alloc = report.largest_alloc.max(largest);
        let mut find = |kind, detail: String| {
            report.findings.push(Finding {
                kind,
                detail,
                input: input.clone(),
            })
        };
        if let Err(p) = outcome {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            find("panic", msg);
        }
        if took > HANG {
            find("hang", format!("{:.1} s", took.as_secs_f64()));
        }
        if largest > target.alloc_limit {
            find(
                "allocation",
                format!("{largest} bytes at once (limit {})", target.alloc_limit),
            );
        }
        if i % 1000 == 0 {
            progress(i);
        }
    }
    report.seconds = t0.elapsed().as_secs_f64();
    report
}

/// Writes a finding's input under `fuzz/findings/`; its path.
pub fn save(target: &str, f: &Finding) -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("findings");
    std::fs::create_dir_all(&dir)?;
    let h = f.input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{target}-{}-{h:016x}", f.kind));
    std::fs::write(&path, &f.input)?;
    Ok(path)
}
