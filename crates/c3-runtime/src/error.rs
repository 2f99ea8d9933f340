//! The runtime's one error type. Front-ends map it without parsing messages: the
//! HTTP service to a status code ([`Error::is_client_error`], [`Error::QueueFull`]),
//! the CLI to an exit code, Python bindings to an exception. Every message is one
//! line naming the thing at fault; no `ort` or `anyhow` type appears in it.

use std::path::PathBuf;

/// What went wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the caller: empty text, over a limit, latents of another
    /// export, a malformed latent file. A client's fault (HTTP 400).
    #[error("{0}")]
    Input(String),
    /// An export folder (or a plan, a latent file on disk) that cannot be used: the
    /// operator's fault, found at load time.
    #[error("{path}: {msg}")]
    Export { path: PathBuf, msg: String },
    /// A TensorRT plan folder that does not fit this export or this machine.
    #[error("{0}")]
    Engine(String),
    /// ONNX Runtime failed: loading a library or session, or a run.
    #[error("onnx runtime: {0}")]
    Ort(String),
    /// The scheduler's queue holds `max_queue` requests already (HTTP 429).
    #[error("the queue is full ({max_queue} requests waiting); retry later")]
    QueueFull { max_queue: usize },
    /// The scheduler stopped (shutdown, or its thread failed) before the request ended.
    #[error("the scheduler is not running")]
    Stopped,
    /// The request was cancelled by its caller before it ended.
    #[error("the request was cancelled")]
    Cancelled,
    /// Checkpoint, manifest, tokenizer and generation rules (shared with c3-core).
    #[error(transparent)]
    Core(#[from] c3_core::Error),
    /// Loading ONNX Runtime itself or reading an export's ONNX protobuf (c3-onnx). Kept
    /// whole, not flattened into [`Error::Ort`], so front-ends can still tell a missing
    /// library (the machine's fault: [`Error::is_environment`]) from a bad file.
    #[error(transparent)]
    Onnx(#[from] c3_onnx::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Anything else that breaks an invariant of the runtime itself (a bug or a
    /// model that returns the wrong shapes).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Whether the caller's input is at fault (not the server's, not the model's).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::Input(_) | Error::Core(c3_core::Error::Input(_))
        )
    }

    /// Whether the machine is at fault: the ONNX Runtime library is missing or does
    /// not load (the CLI's exit code 3).
    pub fn is_environment(&self) -> bool {
        matches!(self, Error::Onnx(e) if e.is_environment())
    }

    /// [`Error::Export`] for `path`.
    pub(crate) fn export(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Export {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<c3_onnx::ort::Error> for Error {
    fn from(e: c3_onnx::ort::Error) -> Self {
        Error::Ort(one_line(&e))
    }
}

/// An ONNX Runtime message on one line: they sometimes carry a trailing newline.
pub(crate) fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string().trim().replace('\n', " ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `ensure!` for the runtime's errors: `ensure!(cond, Variant, "fmt", args)`.
macro_rules! ensure {
    ($cond:expr, $variant:ident, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::Error::$variant(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;
