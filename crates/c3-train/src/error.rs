//! Errors of the training crate.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] c3_core::Error),
    #[cfg(feature = "torch")]
    #[error(transparent)]
    Model(#[from] c3_torch::Error),
    #[cfg(feature = "torch")]
    #[error("libtorch: {0}")]
    Torch(#[from] c3_torch::tch::TchError),
    #[error("recipe {path}: {msg}")]
    Recipe {
        path: std::path::PathBuf,
        msg: String,
    },
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
