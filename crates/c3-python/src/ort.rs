//! Finding ONNX Runtime from Python. Nothing is bundled in the wheel (the CPU,
//! CUDA and TensorRT builds of ONNX Runtime differ, and the user picks one); the
//! library is looked for, first found wins:
//!
//! 1. `Runtime(..., ort_lib=PATH)`, the only place tried when given;
//! 2. `$ORT_DYLIB_PATH`, likewise;
//! 3. a `libonnxruntime.so*` beside the extension module (inside the installed `c3`
//!    package: where a deployment image can drop it);
//! 4. the `onnxruntime` (or `onnxruntime-gpu`) Python package's `capi/` folder, found
//!    without importing it: `pip install onnxruntime` is then the whole install;
//! 5. then as the service binary looks ([`c3_onnx::ort_env`]): beside the Python
//!    executable and its `../lib`, this checkout's `.deps/onnxruntime/lib` (wheels
//!    built here), the system loader path.
//!
//! ort loads one library per process, before the first session: a later `ort_lib`
//! naming another file is refused rather than ignored.

use std::path::{Path, PathBuf};

use c3_onnx::ort_env;
use pyo3::prelude::*;

use crate::errors::{Fault, Kind};

/// The library file in `dir` (plain or versioned name), if there is one.
fn lib_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join("libonnxruntime.so");
    if plain.exists() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so."))
        })
        .collect();
    versioned.sort();
    versioned.into_iter().next()
}

/// The folder of the `c3` package (where the extension module lives).
fn module_dir(py: Python<'_>) -> Option<PathBuf> {
    let file: String = py
        .import("c3._c3")
        .ok()?
        .getattr("__file__")
        .ok()?
        .extract()
        .ok()?;
    Path::new(&file).parent().map(Path::to_path_buf)
}

/// The `capi/` folder of an installed `onnxruntime` package, located by
/// `importlib.util.find_spec` (which does not import it).
fn onnxruntime_package_dir(py: Python<'_>) -> Option<PathBuf> {
    // onnxruntime-gpu installs under the same package name.
    let spec = py
        .import("importlib.util")
        .ok()?
        .call_method1("find_spec", ("onnxruntime",))
        .ok()?;
    if spec.is_none() {
        return None;
    }
    let origin: Option<String> = spec.getattr("origin").ok()?.extract().ok()?;
    Path::new(&origin?).parent().map(|p| p.join("capi"))
}

/// Whether the library is already named (`ort_lib` or the variable): then no
/// other place is looked at.
fn named() -> bool {
    let first = ort_env::places().into_iter().next();
    first.is_some_and(|p| p.source == "--ort-lib" || p.source == "ORT_DYLIB_PATH")
}

/// The first Python place holding a library.
fn python_lib(py: Python<'_>) -> Option<PathBuf> {
    python_places(py).iter().find_map(|(_, d)| lib_in(d))
}

/// The places this module adds before [`ort_env`]'s own, as `(how, folder)`.
fn python_places(py: Python<'_>) -> Vec<(&'static str, PathBuf)> {
    let mut v = Vec::new();
    if let Some(d) = module_dir(py) {
        v.push(("beside the c3 module", d));
    }
    if let Some(d) = onnxruntime_package_dir(py) {
        v.push(("the onnxruntime Python package", d));
    }
    v
}

/// Chooses the library before the first session is made; see the module docs.
pub fn choose(py: Python<'_>, ort_lib: Option<PathBuf>) -> Result<(), Fault> {
    let loaded = ort_env::dylib_path();
    if let Some(path) = ort_lib {
        if ort_env::set_dylib_path(path.clone()) {
            return Ok(());
        }
        // Already chosen (or loaded): fine if it is the same file.
        if same_file(&path, &loaded) {
            return Ok(());
        }
        return Err(Fault {
            kind: Kind::Load,
            msg: format!(
                "ort_lib {}: ONNX Runtime is already loaded from {} in this process (one library per process; give ort_lib to the first Runtime)",
                path.display(),
                loaded.display()
            ),
        });
    }
    if !named()
        && let Some(lib) = python_lib(py)
    {
        // False when ONNX Runtime is already loaded: that library stays.
        ort_env::set_dylib_path(lib);
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Every place tried, in order, for a "not found" message: this module's and
/// [`ort_env`]'s.
pub fn places(py: Python<'_>) -> Vec<String> {
    // A named library is the only place tried.
    let ours = if named() {
        Vec::new()
    } else {
        python_places(py)
    };
    let mut v: Vec<String> = ours
        .into_iter()
        .map(|(how, d)| format!("{how} {}", d.join("libonnxruntime.so*").display()))
        .collect();
    v.extend(
        ort_env::places()
            .into_iter()
            .map(|p| format!("{} {}", p.source, p.path.display())),
    );
    v
}

/// The library ONNX Runtime is loaded from, or the one the next `Runtime` would
/// load (nothing is chosen or loaded by asking).
pub fn library(py: Python<'_>) -> PathBuf {
    if named() {
        return ort_env::dylib_path();
    }
    python_lib(py).unwrap_or_else(ort_env::dylib_path)
}
