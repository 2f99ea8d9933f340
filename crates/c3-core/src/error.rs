//! Errors of the core crate. Every variant names the file, tensor or field at fault,
//! because the user's next step is to go and look at exactly that thing.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading or writing the C3 contract's artifacts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{path}: not a valid safetensors file: {msg}")]
    Safetensors { path: PathBuf, msg: String },
    #[error("tensor `{name}` is missing from the checkpoint {dir}")]
    MissingTensor { name: String, dir: PathBuf },
    #[error("tensor `{name}` in {path} has shape {got:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        path: PathBuf,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("tensor `{name}` in {path} has dtype {dtype}, expected one of bf16, f16, f32")]
    TensorDtype {
        name: String,
        path: PathBuf,
        dtype: String,
    },
    #[error("tokenizer {path}: {msg}")]
    Tokenizer { path: PathBuf, msg: String },
    #[error("{0}")]
    Input(String),
    /// A write that ran out of disk room, or was refused before it started for want
    /// of it ([`crate::room`]): the path, the OS's words, what needed how much.
    #[error("{path}: {cause}; {what} needs about {}", crate::room::sizes(.needed, .free))]
    NoRoom {
        path: PathBuf,
        cause: String,
        what: String,
        needed: u64,
        free: Option<u64>,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn config(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
