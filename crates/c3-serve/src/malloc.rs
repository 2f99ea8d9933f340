//! The service's process memory under glibc malloc. glibc gives every thread that
//! allocates while another holds an arena a new one, up to eight per core, and each
//! arena keeps the pages its threads freed. Under hours of mixed traffic (tokio
//! workers, the scheduler, ONNX Runtime's threads, all allocating) the resident
//! memory then swings by tens of MiB and creeps: the 30-minute soak on the default
//! model grew 8.9%, between 206 and 306 MiB (docs/hardening/).
//!
//! Two levers, both applying to ONNX Runtime's C++ allocations too (same malloc),
//! measured on this 2-core machine in 2-minute runs (BENCHMARKS.md, "Soak"):
//! - [`limit_arenas`]: fewer arenas hold less, but too few make threads wait for
//!   each other in malloc. Two arenas held the server at 125-141 MiB but cost ~30% of
//!   its throughput; two per core (four here: the default, [`default_arenas`]) kept
//!   the throughput of glibc's sixteen with a narrower band (205-231 MiB against
//!   168-392 MiB in the second minute).
//! - [`start_trimming`]: every few seconds `malloc_trim(0)` hands the free pages of
//!   every arena back to the kernel; lower memory, ~5% less throughput. Off by
//!   default.

use std::time::Duration;

/// Caps glibc's arenas at `n` (`None`: glibc's own default). Called first thing in
/// `main`, before any thread starts: arenas made before it stay. `MALLOC_ARENA_MAX`
/// in the environment, when set, wins (the operator's choice). Returns the cap in
/// force, `None` where it is glibc's default or not glibc at all.
pub fn limit_arenas(n: Option<usize>) -> Option<usize> {
    if let Some(v) = std::env::var_os("MALLOC_ARENA_MAX") {
        return v.to_str().and_then(|s| s.parse().ok());
    }
    let n = n?;
    set_arena_max(n).then_some(n)
}

/// Two arenas per core: the default cap.
pub fn default_arenas() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts a thread that returns freed memory to the kernel every `every`. Returns
/// whether it runs (not on allocators other than glibc's).
pub fn start_trimming(every: Duration) -> bool {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || every.is_zero() {
        return false;
    }
    std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                trim();
            }
        })
        .is_ok()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only takes each arena's lock and releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(n: usize) -> bool {
    let Ok(n) = libc::c_int::try_from(n) else {
        return false;
    };
    // SAFETY: mallopt takes plain integers; glibc documents M_ARENA_MAX as settable
    // at any time (it bounds arenas created from then on).
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_n: usize) -> bool {
    false
}
