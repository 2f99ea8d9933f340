//! How many malloc arenas the service's process keeps. glibc gives every thread that
//! allocates while another holds an arena a new one, up to eight per core; each
//! keeps its own freed pages. Under hours of mixed traffic (tokio workers, the
//! scheduler, ONNX Runtime's threads, all allocating) the resident memory then
//! swings by tens of MiB and creeps up: the 30-minute soak on the default model
//! grew 8.9% and swung between 206 and 306 MiB. With two arenas the same load held
//! at 133-137 MiB (docs/hardening/). The limit applies to ONNX Runtime's C++
//! allocations too: they go through the same malloc.

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
