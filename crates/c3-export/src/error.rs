//! The exporter's error: what went wrong, named, and which of three kinds it is, so a
//! release pipeline can tell "bad input" from "numbers drifted" from "this machine
//! lacks a library" by exit code alone (README, "Export in release pipelines").
//!
//! The library returns only [`ExportError`] (no `anyhow`): a cause gets what was
//! being done added with [`ResultExt::context`], printed `what: cause` by [`one_line`].

use std::fmt;
use std::path::PathBuf;

use c3_core::checkpoint::HealthReport;
use serde::Serialize;

use crate::verify::VerifyReport;

/// A boxed error with its causes (`source()` chain) kept.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`ExportError`].
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

/// The three ways an export fails, each with its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// Usage or input: flags, checkpoint, output folder. Exit 1.
    Input,
    /// `--verify` measured a mismatch with the tch reference. Exit 2.
    Verify,
    /// The machine: a missing ONNX Runtime, `c3 reference` or libtorch. Exit 3.
    Environment,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Input => 1,
            ErrorKind::Verify => 2,
            ErrorKind::Environment => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Input => "input",
            ErrorKind::Verify => "verify",
            ErrorKind::Environment => "environment",
        }
    }

    /// The kind of an error given as its chain of causes (e.g. the `c3` binary's
    /// `anyhow::Error::chain()`): an [`ExportError`] says its own, ONNX Runtime
    /// library errors (from c3-onnx directly or through the runtime) are the
    /// environment, the rest input.
    pub fn of_chain<'a>(
        chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
    ) -> ErrorKind {
        for err in chain {
            if let Some(x) = err.downcast_ref::<ExportError>() {
                return x.kind();
            }
            let onnx_env = err
                .downcast_ref::<c3_onnx::Error>()
                .is_some_and(c3_onnx::Error::is_environment);
            // The runtime's `Onnx` variant is transparent: its inner c3-onnx error is
            // not a separate link of the chain, so ask the runtime's error itself.
            let runtime_env = err
                .downcast_ref::<c3_runtime::Error>()
                .is_some_and(c3_runtime::Error::is_environment);
            if onnx_env || runtime_env {
                return ErrorKind::Environment;
            }
        }
        ErrorKind::Input
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// NaN, ±Inf or out-of-range weights (without `--allow-nonfinite`).
    #[error(
        "checkpoint {}: {report} (run `c3 inspect --check`; --allow-nonfinite exports them anyway, for forensics only)",
        checkpoint.display()
    )]
    Unhealthy {
        checkpoint: PathBuf,
        report: Box<HealthReport>,
    },
    /// `--verify` found the export differs from the tch reference.
    #[error("verification failed: {}", report.failures())]
    Verify { report: Box<VerifyReport> },
    /// The machine lacks something the export needs.
    #[error(transparent)]
    Environment(BoxError),
    /// Anything else about the input (flags, checkpoint, files).
    #[error(transparent)]
    Input(BoxError),
}

impl ExportError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExportError::Verify { .. } => ErrorKind::Verify,
            ExportError::Environment(_) => ErrorKind::Environment,
            _ => ErrorKind::Input,
        }
    }

    /// What `--verify` measured, when the failure is a mismatch.
    pub fn verify_report(&self) -> Option<&VerifyReport> {
        match self {
            ExportError::Verify { report } => Some(report),
            _ => None,
        }
    }

    /// An input error with this message.
    pub fn input(msg: impl Into<String>) -> Self {
        ExportError::Input(msg.into().into())
    }

    /// This error as the cause of `what` (`what: <this error>` on one line), of the
    /// same kind. A verification failure is returned as is: its report says what
    /// was compared, and callers read it through [`Self::verify_report`].
    pub fn context(self, what: impl Into<String>) -> Self {
        let kind = self.kind();
        if kind == ErrorKind::Verify {
            return self;
        }
        let wrapped = Box::new(Context {
            what: what.into(),
            cause: self,
        });
        if kind == ErrorKind::Environment {
            ExportError::Environment(wrapped)
        } else {
            ExportError::Input(wrapped)
        }
    }

    /// The message and its causes on one line (`a: b: c`), as the CLI prints it.
    pub fn one_line(&self) -> String {
        one_line(self)
    }

    /// `{"error": "...", "kind": "input|verify|environment"}`, plus `verify` with
    /// every figure compared when verification failed: what `--json` prints on failure.
    pub fn to_json(&self) -> serde_json::Value {
        error_json(&self.one_line(), self.kind(), self.verify_report())
    }
}

/// What was being done when `cause` happened; `cause` stays the `source()`.
#[derive(Debug)]
struct Context {
    what: String,
    cause: ExportError,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// `.context(..)` on any result whose error converts into an [`ExportError`].
pub trait ResultExt<T> {
    /// Adds `what` (e.g. `checkpoint models/x`) in front of the error's message.
    fn context(self, what: impl Into<String>) -> Result<T>;
    /// [`Self::context`], with the message built only on failure.
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<ExportError>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

impl From<c3_onnx::Error> for ExportError {
    fn from(e: c3_onnx::Error) -> Self {
        if e.is_environment() {
            ExportError::Environment(Box::new(e))
        } else {
            ExportError::Input(Box::new(e))
        }
    }
}

/// Files read and written (checkpoint configs, the tokenizer, the reference's output).
impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        ExportError::Input(Box::new(e))
    }
}

impl From<serde_json::Error> for ExportError {
    fn from(e: serde_json::Error) -> Self {
        ExportError::Input(Box::new(e))
    }
}

impl From<safetensors::SafeTensorError> for ExportError {
    fn from(e: safetensors::SafeTensorError) -> Self {
        ExportError::Input(Box::new(e))
    }
}

impl From<c3_runtime::Error> for ExportError {
    fn from(e: c3_runtime::Error) -> Self {
        if e.is_environment() {
            ExportError::Environment(Box::new(e))
        } else {
            ExportError::Input(Box::new(e))
        }
    }
}

impl From<c3_core::Error> for ExportError {
    fn from(e: c3_core::Error) -> Self {
        ExportError::Input(Box::new(e))
    }
}

/// `e` and its causes joined by `: `, newlines folded, so an error is one line.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        // `#[error(transparent)]` and anyhow's boxes repeat the inner message.
        if parts.last() != Some(&msg) {
            parts.push(msg);
        }
        cur = s.source();
    }
    parts.join(": ").replace('\n', "; ")
}

/// The failure object `--json` prints (also used by `c3` for every subcommand).
pub fn error_json(
    message: &str,
    kind: ErrorKind,
    verify: Option<&VerifyReport>,
) -> serde_json::Value {
    let mut v = serde_json::json!({"error": message, "kind": kind.name()});
    if let Some(r) = verify {
        v["verify"] = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_documented_exit_codes() {
        let codes: Vec<i32> = [ErrorKind::Input, ErrorKind::Verify, ErrorKind::Environment]
            .iter()
            .map(|k| k.exit_code())
            .collect();
        assert_eq!(codes, [1, 2, 3]);
    }

    #[test]
    fn an_ort_library_error_deep_in_a_chain_is_the_environment() {
        let missing = c3_onnx::Error::OrtLibraryMissing {
            tried: "ORT_DYLIB_PATH /nowhere/libonnxruntime.so".into(),
        };
        let e = ExportError::from(missing).context("loading the export");
        assert_eq!(e.kind(), ErrorKind::Environment);
        let line = e.one_line();
        assert!(
            line.starts_with("loading the export: ONNX Runtime library not found"),
            "{line}"
        );
        let j = e.to_json();
        assert_eq!(j["kind"], "environment");
        // The same error reached through the runtime (`C3Runtime::load` -> `Onnx`).
        let missing = c3_onnx::Error::OrtLibraryMissing {
            tried: "ORT_DYLIB_PATH /nowhere/libonnxruntime.so".into(),
        };
        let rt = c3_runtime::Error::from(missing);
        let e = ExportError::from(rt).context("verify");
        assert_eq!(e.kind(), ErrorKind::Environment);
        let rt: ExportError = c3_runtime::Error::Input("document 0 is empty".into()).into();
        assert_eq!(rt.kind(), ErrorKind::Input);
        let plain = ExportError::input("bad\nflag");
        assert_eq!(plain.kind(), ErrorKind::Input);
        assert_eq!(plain.one_line(), "bad; flag");
    }
}
