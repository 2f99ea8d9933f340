//! `provenance.json`: the one file of an export folder that differs between runs
//! (when, how long, from which path, what `--verify` measured). It is written last,
//! is not listed in or hashed by `c3-export.json`, and no consumer reads it; it exists
//! so the manifest and ONNX files can stay byte-identical (export/CONTRACT.md).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{ExportError, Result};
use crate::options::ExportOptions;
use crate::verify::VerifyReport;

/// File name inside the export folder.
pub const PROVENANCE_FILE: &str = "provenance.json";
/// The `format` value written.
pub const PROVENANCE_FORMAT: &str = "c3-export-provenance/1";

/// Contents of `provenance.json`.
#[derive(Debug, Serialize)]
pub struct Provenance<'a> {
    pub format: &'static str,
    pub c3_version: &'static str,
    /// sha256 of the `c3-export.json` written beside it.
    pub manifest_sha256: &'a str,
    /// The checkpoint path as given on the command line.
    pub checkpoint_path: String,
    pub started_unix: u64,
    pub seconds: f64,
    pub verify: Option<&'a VerifyReport>,
}

/// The checkpoint path recorded in `DIR/provenance.json`, if the file is there and
/// names one (a convenience for tools on the machine that exported, like `c3 bench`;
/// the path may not exist anywhere else).
pub fn checkpoint_path(dir: &Path) -> Option<std::path::PathBuf> {
    let bytes = std::fs::read(dir.join(PROVENANCE_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("checkpoint_path")?.as_str().map(Into::into)
}

impl<'a> Provenance<'a> {
    pub fn new(
        args: &ExportOptions,
        manifest_sha256: &'a str,
        started: SystemTime,
        seconds: f64,
        verify: Option<&'a VerifyReport>,
    ) -> Self {
        Provenance {
            format: PROVENANCE_FORMAT,
            c3_version: env!("CARGO_PKG_VERSION"),
            manifest_sha256,
            checkpoint_path: args.checkpoint.display().to_string(),
            started_unix: started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            seconds,
            verify,
        }
    }

    /// Writes `DIR/provenance.json`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(PROVENANCE_FILE);
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| ExportError::input(format!("{}: {e}", path.display())))?;
        bytes.push(b'\n');
        std::fs::write(&path, bytes)
            .map_err(|e| ExportError::input(format!("{}: {e}", path.display())))
    }
}
