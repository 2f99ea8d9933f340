//! Loading ONNX Runtime (`ort` with `load-dynamic`) once per process.
//!
//! The library is looked for, in this order: the path given to [`set_dylib_path`]
//! (`--ort-lib`), `$ORT_DYLIB_PATH`, a `libonnxruntime.so*` beside the running binary,
//! one in `../lib` beside it (a deployment image's layout), the copy
//! `scripts/install-deps.sh` puts in this checkout's `.deps/onnxruntime/lib/`, and
//! last the system loader path. A path named explicitly (flag or variable) is used
//! as given, never skipped for another. ort allows one environment per process, so
//! [`init_ort`] keeps it in a static and hands out references: the exporter's
//! `--verify`, the runtime and the tests can all call it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;

use crate::error::{Error, Result};

static ENV: OnceLock<Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());
static OVERRIDE: OnceLock<PathBuf> = OnceLock::new();

/// The library's file name, as the system loader looks it up.
const LIB: &str = "libonnxruntime.so";

/// Names the library to load (`--ort-lib`). Only before ONNX Runtime is loaded, and
/// only once: returns false when it comes too late to take effect.
pub fn set_dylib_path(path: PathBuf) -> bool {
    ENV.get().is_none() && OVERRIDE.set(path).is_ok()
}

/// One place the library is looked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// How the place was chosen, for messages: `--ort-lib`, `ORT_DYLIB_PATH`, ...
    pub source: &'static str,
    pub path: PathBuf,
}

/// The places tried, in order (see the module docs), for this process.
pub fn places() -> Vec<Place> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    search_places(
        OVERRIDE.get().cloned(),
        std::env::var_os("ORT_DYLIB_PATH")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        exe_dir.as_deref(),
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../.deps/onnxruntime/lib"
        )),
    )
}

/// The ordered places for an explicit path, the variable, the binary's folder and
/// the checkout's `.deps` library folder. An explicit path or variable is the only
/// place: naming a library and silently getting another would be worse than failing.
fn search_places(
    flag: Option<PathBuf>,
    var: Option<PathBuf>,
    exe_dir: Option<&Path>,
    checkout_lib: &Path,
) -> Vec<Place> {
    if let Some(path) = flag {
        return vec![Place {
            source: "--ort-lib",
            path,
        }];
    }
    if let Some(path) = var {
        return vec![Place {
            source: "ORT_DYLIB_PATH",
            path,
        }];
    }
    let mut v = Vec::new();
    if let Some(dir) = exe_dir {
        v.push(Place {
            source: "beside the binary",
            path: find_lib(dir),
        });
        v.push(Place {
            source: "../lib beside the binary",
            path: find_lib(&dir.join("../lib")),
        });
    }
    v.push(Place {
        source: "this checkout's .deps",
        path: checkout_lib.join(LIB),
    });
    v
}

/// `DIR/libonnxruntime.so`, else the first `DIR/libonnxruntime.so.*` (versioned
/// names as wheels and tarballs ship them), else the plain name (to report as tried).
fn find_lib(dir: &Path) -> PathBuf {
    let plain = dir.join(LIB);
    if plain.exists() {
        return plain;
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{LIB}.")))
        })
        .collect();
    versioned.sort();
    versioned.into_iter().next().unwrap_or(plain)
}

/// The library that will be (or was) loaded: the first place that exists, else the
/// bare name for the system loader. For messages and for loading.
pub fn dylib_path() -> PathBuf {
    let places = places();
    let explicit = matches!(places.first(), Some(p) if p.source == "--ort-lib" || p.source == "ORT_DYLIB_PATH");
    match places.iter().find(|p| explicit || p.path.exists()) {
        Some(p) => p.path.clone(),
        None => PathBuf::from(LIB),
    }
}

/// Loads ONNX Runtime from [`dylib_path`] and creates the process-wide environment, or
/// returns the existing one. Fails naming every place tried and the install command.
pub fn init_ort() -> Result<&'static Environment> {
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    // A poisoned lock only means another thread panicked mid-init; the OnceLock is
    // still consistent, so carry on.
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let path = dylib_path();
    let tried = || {
        let mut t: Vec<String> = places()
            .iter()
            .map(|p| format!("{} {}", p.source, p.path.display()))
            .collect();
        if path == Path::new(LIB) {
            t.push(format!("the system loader path ({LIB})"));
        }
        t.join(", ")
    };
    if path != Path::new(LIB) && !path.exists() {
        return Err(Error::OrtLibraryMissing { tried: tried() });
    }
    let ort_err = |message: String| Error::Ort {
        path: path.clone(),
        message,
    };
    let env = match ort::init_from(&path) {
        Ok(builder) => builder,
        // The bare name failed in the system loader too: nothing was found anywhere.
        Err(_) if path == Path::new(LIB) => {
            return Err(Error::OrtLibraryMissing { tried: tried() });
        }
        Err(e) => return Err(ort_err(e.to_string())),
    }
    .with_name("c3")
    .build()
    .map_err(|e| ort_err(e.to_string()))?;
    tracing::debug!(path = %path.display(), "ONNX Runtime loaded");
    Ok(ENV.get_or_init(|| env))
}

/// A CPU session for the model at `path` (external data is resolved beside it), with
/// ONNX Runtime's default options. Errors name the model file.
pub fn cpu_session(path: impl AsRef<Path>) -> Result<Session> {
    let path = path.as_ref();
    let env = init_ort()?;
    let model_err = |e: ort::Error| Error::OrtSession {
        path: path.to_owned(),
        message: e.to_string(),
    };
    Session::builder(env)
        .map_err(model_err)?
        .commit_from_file(path)
        .map_err(model_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_come_in_order_and_a_named_library_is_the_only_place() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        let lib = tmp.path().join("lib");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        let deps = Path::new("/checkout/.deps/onnxruntime/lib");
        let sources = |v: &[Place]| v.iter().map(|p| p.source).collect::<Vec<_>>();
        let v = search_places(None, None, Some(&bin), deps);
        assert_eq!(
            sources(&v),
            [
                "beside the binary",
                "../lib beside the binary",
                "this checkout's .deps"
            ]
        );
        assert_eq!(v[0].path, bin.join(LIB));
        // A versioned library in ../lib is found by its real name.
        std::fs::write(lib.join("libonnxruntime.so.1.31.1"), b"").unwrap();
        let v = search_places(None, None, Some(&bin), deps);
        assert_eq!(v[1].path, bin.join("../lib/libonnxruntime.so.1.31.1"));
        // The flag wins over the variable, and either is the only place tried.
        let v = search_places(Some("/a.so".into()), Some("/b.so".into()), Some(&bin), deps);
        assert_eq!(
            v,
            [Place {
                source: "--ort-lib",
                path: "/a.so".into()
            }]
        );
        let v = search_places(None, Some("/b.so".into()), Some(&bin), deps);
        assert_eq!(sources(&v), ["ORT_DYLIB_PATH"]);
    }

    #[test]
    fn the_missing_library_error_names_every_place() {
        let err = Error::OrtLibraryMissing {
            tried: "beside the binary /x/libonnxruntime.so, the system loader path".into(),
        }
        .to_string();
        assert!(
            err.contains("/x/libonnxruntime.so") && err.contains("--ort-lib"),
            "{err}"
        );
    }

    #[test]
    fn init_is_idempotent() -> Result<()> {
        let a = init_ort()?;
        let b = init_ort()?;
        assert!(std::ptr::eq(a, b));
        Ok(())
    }
}
