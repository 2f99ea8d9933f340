//! Coverage-guided fuzzing of one target under AFL++ (persistent mode), beside the
//! mutation fuzzer of `c3-fuzz`: AFL++ keeps the inputs that reach new edges of the
//! parsers' code and mutates those, so it finds paths the structure-aware mutations
//! do not aim at. Built only by `cargo afl` (scripts/fuzz-afl.sh), which instruments
//! the code and links AFL++'s runtime:
//!
//! ```sh
//! scripts/fuzz-afl.sh latent-file 300     # TARGET SECONDS
//! ```
//!
//! An input is a crash for AFL++ when the parser panics or allocates more in one
//! request than the target allows (the same limits as `c3-fuzz`); a hang is AFL++'s
//! own timeout.

use c3_fuzz::{alloc, targets};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let ctx = targets::Context::new().unwrap_or_else(|e| {
        eprintln!("c3-fuzz-afl: {e}");
        std::process::exit(2)
    });
    let all = targets::all(&ctx);
    let known: Vec<&str> = all.iter().map(|t| t.name).collect();
    let Some(target) = all.into_iter().find(|t| t.name == name) else {
        eprintln!("c3-fuzz-afl TARGET (targets: {})", known.join(", "));
        std::process::exit(2)
    };
    afl::fuzz!(|data: &[u8]| {
        alloc::reset();
        (target.run)(data);
        let largest = alloc::largest();
        assert!(
            largest <= target.alloc_limit,
            "{}: one allocation of {largest} bytes, past the limit of {}",
            target.name,
            target.alloc_limit
        );
    });
}
