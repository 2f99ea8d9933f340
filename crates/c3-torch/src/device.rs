//! Choosing the torch device, and making CUDA reachable from a binary built against
//! the CPU libtorch.
//!
//! Why this exists: `c3` is linked against libtorch_cpu only (the lean folder of
//! `scripts/install-deps.sh` has no libtorch_cuda), so one binary runs on a machine
//! without a GPU. libtorch's CUDA backend is registered by the static initialisers of
//! `libtorch_cuda.so`; nothing of ours references it, so on a GPU host it is never
//! loaded and `tch::Cuda::is_available()` stays false. Before the first CUDA query we
//! therefore load it ourselves, with `RTLD_GLOBAL`, from `$C3_LIBTORCH_CUDA` (a file
//! or a folder) or from the folder of the `libtorch_cpu.so` this process already
//! mapped (on the hosts: `/opt/torch/.venv/.../torch/lib`, put on `LD_LIBRARY_PATH`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tch::Device;

use crate::error::{Error, Result};

/// Environment variable naming `libtorch_cuda.so` (or its folder).
pub const LIBTORCH_CUDA_ENV: &str = "C3_LIBTORCH_CUDA";

static CUDA_LIB: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Loads `libtorch_cuda.so` once per process. Returns its path, or why it could not
/// be loaded (a CPU-only machine: no such file beside libtorch_cpu).
pub fn load_cuda_backend() -> std::result::Result<PathBuf, String> {
    CUDA_LIB.get_or_init(load_cuda_once).clone()
}

fn load_cuda_once() -> std::result::Result<PathBuf, String> {
    let candidates = cuda_candidates();
    if candidates.is_empty() {
        return Err(format!(
            "no libtorch_cuda.so: libtorch_cpu.so is not mapped from a folder that has one, and ${LIBTORCH_CUDA_ENV} is unset"
        ));
    }
    open_first(&candidates)
}

/// Opens the first library of `paths` that loads, globally and for good; the error
/// names every one tried and why it failed.
fn open_first(paths: &[PathBuf]) -> std::result::Result<PathBuf, String> {
    let mut why = Vec::new();
    for path in paths {
        // SAFETY: loading a shared library runs its initialisers; libtorch_cuda's
        // register CUDA with the libtorch already in this process, which is the point.
        // The handle is leaked: the backend must stay registered for the process's life.
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
        match unsafe { libloading::os::unix::Library::open(Some(path), flags) } {
            Ok(lib) => {
                std::mem::forget(lib);
                return Ok(path.clone());
            }
            Err(e) => why.push(format!("{}: {e}", path.display())),
        }
    }
    Err(why.join("; "))
}

/// Where `libtorch_cuda.so` may be: the environment's choice first, then beside the
/// mapped `libtorch_cpu.so`. Only existing files are returned.
fn cuda_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(v) = std::env::var_os(LIBTORCH_CUDA_ENV) {
        let p = PathBuf::from(v);
        out.push(if p.is_dir() {
            p.join("libtorch_cuda.so")
        } else {
            p
        });
    }
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        if let Some(dir) = mapped_dir_of(&maps, "libtorch_cpu.so") {
            out.push(dir.join("libtorch_cuda.so"));
        }
    }
    out.retain(|p| p.is_file());
    out.dedup();
    out
}

/// The folder of the first mapping in a `/proc/self/maps` text whose file is `name`.
fn mapped_dir_of(maps: &str, name: &str) -> Option<PathBuf> {
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(Path::new)
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// Parses a device name (`auto`, `cpu`, `cuda`, `cuda:N`), loading the CUDA backend
/// when a GPU may be wanted. `auto` is CUDA 0 when usable, else the CPU.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            let _ = load_cuda_backend();
            Ok(Device::cuda_if_available())
        }
        _ => {
            let index = match name.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| bad_device(name))?,
                None => return Err(bad_device(name)),
            };
            let loaded = load_cuda_backend();
            let count = tch::Cuda::device_count().max(0) as usize;
            if index < count {
                return Ok(Device::Cuda(index));
            }
            let why = match loaded {
                Err(e) => format!("the CUDA backend of libtorch is not loaded ({e})"),
                Ok(p) => format!("{} is loaded but sees {count} device(s)", p.display()),
            };
            Err(Error::Input(format!(
                "device `{name}` is not available: {why}"
            )))
        }
    }
}

fn bad_device(name: &str) -> Error {
    Error::Input(format!(
        "unknown device `{name}` (expected auto, cpu, cuda or cuda:N)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_folder_of_a_mapped_library() {
        let maps = "7f00-7f01 r-xp 00000000 08:01 12 /opt/x/torch/lib/libtorch_cpu.so\n\
                    7f02-7f03 r--p 00000000 08:01 13 /usr/lib/libc.so.6\n\
                    7ffd-7ffe rw-p 00000000 00:00 0 [stack]\n";
        assert_eq!(
            mapped_dir_of(maps, "libtorch_cpu.so"),
            Some(PathBuf::from("/opt/x/torch/lib"))
        );
        assert_eq!(mapped_dir_of(maps, "libtorch_cuda.so"), None);
    }

    #[test]
    fn opens_the_first_library_that_loads() {
        // Not a library: refused, named. Then a real one (this process's libgomp,
        // beside libtorch_cpu): loaded. The mechanism libtorch_cuda.so goes through.
        let t = tempfile::tempdir().unwrap();
        let fake = t.path().join("libtorch_cuda.so");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let e = open_first(std::slice::from_ref(&fake)).unwrap_err();
        assert!(e.contains(&fake.display().to_string()), "{e}");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let dir = mapped_dir_of(&maps, "libtorch_cpu.so").expect("libtorch_cpu.so is mapped");
        let real = dir.join("libgomp.so.1");
        assert_eq!(open_first(&[fake, real.clone()]).unwrap(), real);
    }

    #[test]
    fn device_names() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        for bad in ["gpu", "cuda:", "cuda:x", "cudax", ""] {
            let e = parse_device(bad).unwrap_err().to_string();
            assert!(e.contains("unknown device"), "{bad}: {e}");
        }
    }

    #[test]
    fn cuda_on_a_cpu_machine_is_a_clear_error() {
        // This test machine has no GPU: asking for one names what is missing.
        if tch::Cuda::device_count() > 0 {
            return;
        }
        let e = parse_device("cuda").unwrap_err().to_string();
        assert!(e.contains("device `cuda` is not available"), "{e}");
        assert_eq!(parse_device("auto").unwrap(), Device::Cpu);
    }
}
