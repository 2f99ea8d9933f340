//! Why a model repository could not be written. Every variant names the flag,
//! file or folder at fault.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option the caller gave (provider, counts, paths).
    #[error("{0}")]
    Option(String),
    /// The export folder, or the repository's destination, as c3-core judges it.
    #[error(transparent)]
    Core(#[from] c3_core::Error),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}
