//! `c3 triton`: a Triton Inference Server model repository for an export
//! (crates/c3-triton; docs/triton.md): `c3_roundtrip`, `c3_compress` and
//! `c3_decompress` on Triton's Python backend, over the `c3` Python bindings.

use std::path::PathBuf;

use anyhow::Result;
use c3_triton::{Provider, RepoOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Export folder (made by `c3 export`).
    export: PathBuf,
    /// Model repository to write (staged beside it, renamed into place when complete).
    #[arg(long)]
    out: PathBuf,
    /// Execution provider: cpu (KIND_CPU instances), cuda or tensorrt (KIND_GPU).
    #[arg(long, default_value = "cpu")]
    provider: String,
    /// Instances per model (per GPU with cuda/tensorrt). Each is a process with its own
    /// runtime and scheduler; one instance already runs concurrent requests together.
    #[arg(long, default_value_t = 1)]
    instances: u32,
    /// Rows the runtime's scheduler decodes together, per instance.
    #[arg(long, default_value_t = 16)]
    max_batch: u32,
    /// Requests queued beyond the running batch, per instance; more are refused (UNAVAILABLE).
    #[arg(long, default_value_t = 64)]
    max_queue: u32,
    /// ONNX Runtime intra-op threads per session (0: ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// Folder holding the `c3` wheel's package and numpy, as the server sees it
    /// (repeatable): model.py puts it first on sys.path (Triton's Python stub does not
    /// read PYTHONPATH).
    #[arg(long = "python-path", value_name = "DIR")]
    python_path: Vec<PathBuf>,
    /// Copy the export into the repository (self-contained; the models name it by a
    /// relative path) instead of naming it by its absolute path.
    #[arg(long)]
    copy_export: bool,
    /// Replace an existing repository at `--out`.
    #[arg(long)]
    force: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let o = RepoOptions {
        provider: Provider::parse(&a.provider)?,
        instances: a.instances,
        max_batch: a.max_batch,
        max_queue: a.max_queue,
        threads: a.threads,
        python_path: a.python_path,
        copy_export: a.copy_export,
        force: a.force,
        ..RepoOptions::new(a.export)
    };
    let report = c3_triton::write_repository(&a.out, &o)?;
    if a.json {
        println!("{}", report.to_json());
        return Ok(());
    }
    println!(
        "wrote the Triton model repository {} ({}) for the export {} (manifest {})",
        report.repository.display(),
        report.models.join(", "),
        report.export_dir,
        &report.export_sha256[..12]
    );
    if report.python_path.is_empty() {
        eprintln!(
            "note: no --python-path: the c3 wheel and numpy must be importable by the server's Python (scripts/triton.sh installs and names them)"
        );
    }
    Ok(())
}
