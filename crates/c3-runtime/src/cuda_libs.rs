//! Finding the CUDA user-space libraries ONNX Runtime's CUDA (and TensorRT) provider
//! needs, and loading them before the provider is registered.
//!
//! Why: `libonnxruntime_providers_cuda.so` names its CUDA libraries by soname only
//! (`libcublas.so.13`, `libcudnn.so.9`, ...), so they must be on the loader's path when
//! ONNX Runtime opens it. On the lent GPU hosts (and in most Python-based images) they
//! are not on that path: they live in the `nvidia-*` Python packages, one `lib/`
//! folder each (`site-packages/nvidia/cublas/lib`, or `nvidia/cu13/lib` in the CUDA 13
//! wheels). `LD_LIBRARY_PATH` is read once at process start, so setting it later does
//! nothing; instead we open each library by its full path with `RTLD_GLOBAL`, and the
//! loader then resolves the provider's sonames to the copies already in the process.
//! This is also what onnxruntime's Python `preload_dlls()` does.
//!
//! Where we look, first match per library wins: the folder given by the caller
//! (`--cuda-libs DIR`), then `$C3_CUDA_LIBS` (folders separated by `:`), then the
//! `nvidia/*/lib` folders of Python environments (`$VIRTUAL_ENV`, `$CONDA_PREFIX`,
//! `/opt/torch/.venv`, `/usr/local`, `/usr`). A library not found anywhere is left to
//! the loader's own search (it may be installed system-wide).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Environment variable with folders (`:`-separated) that hold CUDA libraries.
pub const CUDA_LIBS_ENV: &str = "C3_CUDA_LIBS";

/// The sonames the CUDA 13 provider of ONNX Runtime 1.31 opens, dependencies first
/// (cublasLt before cublas, cudnn's parts after cudnn).
const SONAMES: &[&str] = &[
    "libcudart.so.13",
    "libnvrtc.so.13",
    "libnvJitLink.so.13",
    "libcublasLt.so.13",
    "libcublas.so.13",
    "libcurand.so.10",
    "libcufft.so.12",
    "libcudnn_graph.so.9",
    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9",
    "libcudnn_heuristic.so.9",
    "libcudnn_ops.so.9",
    "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9",
    "libcudnn.so.9",
];

/// What [`preload`] did: the libraries loaded, by full path, and the sonames found
/// nowhere (left to the system loader).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preloaded {
    pub loaded: Vec<PathBuf>,
    pub not_found: Vec<&'static str>,
}

static DONE: Mutex<Option<Preloaded>> = Mutex::new(None);

/// The folders searched, in order (see the module comment).
pub fn search_dirs(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
    if let Some(v) = std::env::var_os(CUDA_LIBS_ENV) {
        dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    let prefixes = ["VIRTUAL_ENV", "CONDA_PREFIX"]
        .iter()
        .filter_map(|k| std::env::var_os(k).map(PathBuf::from))
        .chain(["/opt/torch/.venv", "/usr/local", "/usr"].map(PathBuf::from));
    for prefix in prefixes {
        dirs.extend(python_nvidia_dirs(&prefix));
    }
    dirs.dedup();
    dirs
}

/// `PREFIX/lib*/python3*/{site,dist}-packages/nvidia/*/lib`, sorted.
fn python_nvidia_dirs(prefix: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for lib in ["lib", "lib64"] {
        for py in read_dir_sorted(&prefix.join(lib)) {
            let name = py.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.starts_with("python3") {
                continue;
            }
            for pkgs in ["site-packages", "dist-packages"] {
                for pkg in read_dir_sorted(&py.join(pkgs).join("nvidia")) {
                    let l = pkg.join("lib");
                    if l.is_dir() {
                        out.push(l);
                    }
                }
            }
        }
    }
    out
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Loads every CUDA library found in [`search_dirs`] into the process, once (later
/// calls return the first call's result). Fails only when a library that exists
/// cannot be loaded (a broken or mismatched install); missing ones are reported.
pub fn preload(explicit: Option<&Path>) -> Result<Preloaded, String> {
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = done.as_ref() {
        return Ok(d.clone());
    }
    let dirs = search_dirs(explicit);
    let mut out = Preloaded::default();
    for soname in SONAMES {
        let Some(path) = dirs.iter().map(|d| d.join(soname)).find(|p| p.is_file()) else {
            out.not_found.push(soname);
            continue;
        };
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
        // SAFETY: these are the CUDA libraries ONNX Runtime's provider would load
        // itself; loading them earlier by full path only changes where they come from.
        // The handles are leaked: the provider uses them for the process's life.
        match unsafe { libloading::os::unix::Library::open(Some(&path), flags) } {
            Ok(lib) => std::mem::forget(lib),
            Err(e) => return Err(format!("cannot load {}: {e}", path.display())),
        }
        out.loaded.push(path);
    }
    tracing::debug!(loaded = out.loaded.len(), missing = ?out.not_found, "CUDA libraries");
    *done = Some(out.clone());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_python_package_lib_folders() {
        let t = tempfile::tempdir().unwrap();
        for p in [
            "lib/python3.12/site-packages/nvidia/cublas/lib",
            "lib/python3.12/site-packages/nvidia/cu13/lib",
            "lib/python3.12/site-packages/nvidia/empty",
            "lib/perl5/site-packages/nvidia/x/lib",
        ] {
            std::fs::create_dir_all(t.path().join(p)).unwrap();
        }
        let got = python_nvidia_dirs(t.path());
        let sp = t.path().join("lib/python3.12/site-packages/nvidia");
        assert_eq!(got, vec![sp.join("cu13/lib"), sp.join("cublas/lib")]);
    }

    #[test]
    fn the_callers_folder_comes_first() {
        let dirs = search_dirs(Some(Path::new("/x/cuda")));
        assert_eq!(dirs[0], PathBuf::from("/x/cuda"));
    }
}
