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

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;

use c3_fuzz::{alloc, targets};

/// The fixture's export, the loaded runtime and the chosen target.
fn setup(name: &str) -> (targets::Context, targets::Target) {
    let ctx = targets::Context::new().unwrap_or_else(|e| {
        eprintln!("c3-fuzz-afl: {e}");
        std::process::exit(2)
    });
    let all = targets::all(&ctx);
    let known: Vec<&str> = all.iter().map(|t| t.name).collect();
    let known = known.join(", ");
    let Some(target) = all.into_iter().find(|t| t.name == name) else {
        eprintln!("c3-fuzz-afl TARGET (targets: {known})");
        std::process::exit(2)
    };
    (ctx, target)
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    // Set up in the forked child, on its first input, not before AFL++'s fork server
    // starts: the runtime's threads (ONNX Runtime's pools, the scheduler) do not
    // survive a fork, and the children would wait on them forever. Each child runs
    // many inputs, so this costs one setup per child.
    let state = AssertUnwindSafe(RefCell::new(None));
    afl::fuzz!(|data: &[u8]| {
        let mut state = state.borrow_mut();
        let (_, target) = state.get_or_insert_with(|| setup(&name));
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
