//! A Triton Inference Server model repository for a C3 export ([`write_repository`]):
//! three models on Triton's Python backend (`c3_roundtrip`, `c3_compress`,
//! `c3_decompress`, [`Model`]), each a `config.pbtxt` ([`config_pbtxt`]) and a
//! `1/model.py` that serves requests through one `c3.Runtime` of the Python
//! bindings per instance. docs/triton.md is the user's side of this crate.
//!
//! The repository is an artifact like an export: staged beside its destination and
//! renamed into place whole (c3_core::staging), marked by `c3-triton.json`, replaced
//! only with `force`.

mod config;
mod error;

use std::path::{Path, PathBuf};

use c3_core::ExportManifest;
use c3_core::staging::{self, Artifact, Staging};
use serde_json::json;

pub use config::{ConfigParams, Model, Tensor, config_pbtxt, quote};
pub use error::{Error, Result};

use error::io;

/// The repository's marker file (written last).
pub const MARKER_FILE: &str = "c3-triton.json";
/// The marker's `format`.
pub const FORMAT: &str = "c3-triton/1";
/// A model repository written by this crate.
pub const REPOSITORY: Artifact = Artifact {
    what: "a Triton model repository",
    marker: MARKER_FILE,
};
/// Where `--copy-export` puts the export, inside each model's folder (Triton skips
/// folders whose names are not version numbers; a folder at the repository's top
/// level would be taken for a model).
pub const EXPORT_COPY_DIR: &str = "export";

/// `model.py`, with `@C3_PYTHON_PATH@` still to fill in.
const MODEL_PY: &str = include_str!("model.py");

/// Where the models run. Decides the instance kind (KIND_CPU or KIND_GPU) and the
/// provider `c3.Runtime` is opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    TensorRt,
}

impl Provider {
    /// Parses `cpu`, `cuda` or `tensorrt` (as `c3 --provider` does).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Provider::Cpu),
            "cuda" => Ok(Provider::Cuda),
            "tensorrt" | "trt" => Ok(Provider::TensorRt),
            other => Err(Error::Option(format!(
                "unknown execution provider `{other}` (expected cpu, cuda or tensorrt)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
        }
    }

    /// Triton's instance kind for this provider.
    pub fn instance_kind(self) -> &'static str {
        match self {
            Provider::Cpu => "KIND_CPU",
            Provider::Cuda | Provider::TensorRt => "KIND_GPU",
        }
    }
}

/// What to generate. [`RepoOptions::new`] gives the CLI's defaults.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    /// The export folder (made by `c3 export`).
    pub export: PathBuf,
    pub provider: Provider,
    /// Instances per model (per GPU with a GPU provider); each is a process with its
    /// own runtime and scheduler.
    pub instances: u32,
    /// The scheduler's rows decoded together (`c3.Runtime(max_batch=)`).
    pub max_batch: u32,
    /// Requests the scheduler queues beyond the running batch (`max_queue=`).
    pub max_queue: u32,
    /// ONNX Runtime intra-op threads per session (0: ONNX Runtime's default).
    pub threads: u32,
    /// Folders put first on `sys.path` by model.py: where the `c3` wheel and numpy
    /// are installed, as the server will see them.
    pub python_path: Vec<PathBuf>,
    /// Copy the export into the repository (self-contained, relative path) instead
    /// of naming it by its absolute path.
    pub copy_export: bool,
    /// Replace an existing repository at the destination.
    pub force: bool,
}

impl RepoOptions {
    pub fn new(export: impl Into<PathBuf>) -> Self {
        RepoOptions {
            export: export.into(),
            provider: Provider::Cpu,
            instances: 1,
            max_batch: 16,
            max_queue: 64,
            threads: 0,
            python_path: Vec::new(),
            copy_export: false,
            force: false,
        }
    }
}

/// What [`write_repository`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub repository: PathBuf,
    pub models: Vec<&'static str>,
    /// The `EXPORT_DIR` parameter: absolute, or relative to each model's folder.
    pub export_dir: String,
    pub export_sha256: String,
    pub python_path: Vec<String>,
}

impl Report {
    /// The report as the CLI's `--json` object.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "repository": self.repository.display().to_string(),
            "models": self.models,
            "export_dir": self.export_dir,
            "export_sha256": self.export_sha256,
            "python_path": self.python_path,
        })
    }
}

fn utf8<'a>(what: &str, p: &'a Path) -> Result<&'a str> {
    p.to_str().ok_or_else(|| {
        Error::Option(format!(
            "{what} {} is not valid UTF-8 (Triton's config and model.py need text)",
            p.display()
        ))
    })
}

fn absolute(what: &str, p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::Option(format!("{what} {}: {e}", p.display())))
}

/// `model.py` with `python_path` filled in.
pub fn model_py(python_path: &[String]) -> String {
    let list = serde_json::Value::from(python_path.to_vec()).to_string();
    MODEL_PY.replace("@C3_PYTHON_PATH@", &list)
}

fn check_options(o: &RepoOptions) -> Result<()> {
    if o.instances == 0 {
        return Err(Error::Option("--instances must be at least 1".into()));
    }
    if o.max_batch == 0 || o.max_queue == 0 {
        // As c3.Runtime refuses them (the model would fail to load).
        return Err(Error::Option(
            "--max-batch and --max-queue must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Writes the model repository for `o.export` at `out` (staged, then renamed into
/// place). Refuses an existing repository without `o.force`, and any other
/// non-empty folder.
pub fn write_repository(out: &Path, o: &RepoOptions) -> Result<Report> {
    check_options(o)?;
    let (_, export_sha256) = ExportManifest::load(&o.export)?;
    let mut python_path = Vec::new();
    for p in &o.python_path {
        let abs = absolute("--python-path", p)?;
        if !abs.is_dir() {
            tracing::warn!(
                "--python-path {} is not a folder here (fine if it exists where the server runs)",
                abs.display()
            );
        }
        python_path.push(utf8("--python-path", &abs)?.to_string());
    }
    let export_dir = if o.copy_export {
        EXPORT_COPY_DIR.to_string()
    } else {
        let abs = o
            .export
            .canonicalize()
            .map_err(io("resolving the export folder", &o.export))?;
        utf8("export folder", &abs)?.to_string()
    };
    staging::check_out(out, REPOSITORY, o.force)?;
    let stage = Staging::create(out)?;
    let root = stage.path();
    let params = ConfigParams {
        export_dir: export_dir.clone(),
        provider: o.provider,
        instances: o.instances,
        max_batch: o.max_batch,
        max_queue: o.max_queue,
        threads: o.threads,
        export_sha256: export_sha256.clone(),
    };
    let py = model_py(&python_path);
    let mut first_copy: Option<PathBuf> = None;
    for model in Model::ALL {
        let dir = root.join(model.name());
        let version = dir.join("1");
        std::fs::create_dir_all(&version).map_err(io("creating", &version))?;
        write(&dir.join("config.pbtxt"), &config_pbtxt(model, &params))?;
        write(&version.join("model.py"), &py)?;
        if o.copy_export {
            let dest = dir.join(EXPORT_COPY_DIR);
            match &first_copy {
                None => copy_tree(&o.export, &dest, false)?,
                // Hard links to the first copy: one export's bytes on disk.
                Some(src) => copy_tree(src, &dest, true)?,
            }
            first_copy.get_or_insert(dest);
        }
    }
    let models: Vec<&'static str> = Model::ALL.iter().map(|m| m.name()).collect();
    let marker = json!({
        "format": FORMAT,
        "generator": format!("c3 {}", env!("CARGO_PKG_VERSION")),
        "export_sha256": export_sha256,
        "export_dir": export_dir,
        "provider": o.provider.name(),
        "instances": o.instances,
        "max_batch": o.max_batch,
        "max_queue": o.max_queue,
        "models": models,
    });
    let marker_text = serde_json::to_string_pretty(&marker)
        .map_err(|e| Error::Option(format!("serialising {MARKER_FILE}: {e}")))?;
    write(&root.join(MARKER_FILE), &(marker_text + "\n"))?;
    stage.publish(out, REPOSITORY, o.force)?;
    Ok(Report {
        repository: out.to_path_buf(),
        models,
        export_dir,
        export_sha256,
        python_path,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io("writing", path))
}

/// Copies the folder `src` to `dest` (hard links with `link`, falling back to a
/// copy). Symlinks are refused: an export is plain files.
fn copy_tree(src: &Path, dest: &Path, link: bool) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(io("creating", dest))?;
    let entries = std::fs::read_dir(src).map_err(io("reading", src))?;
    for entry in entries {
        let entry = entry.map_err(io("reading", src))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type().map_err(io("reading", &from))?;
        if kind.is_dir() {
            copy_tree(&from, &to, link)?;
        } else if kind.is_file() {
            if !(link && std::fs::hard_link(&from, &to).is_ok()) {
                std::fs::copy(&from, &to).map_err(io("copying", &from))?;
            }
        } else {
            return Err(Error::Option(format!(
                "{} is not a plain file or folder; refusing to copy it into the repository",
                from.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
