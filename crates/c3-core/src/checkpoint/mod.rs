//! The release checkpoint layout (spec §3): a root folder with the decoder, Q and
//! projector, and `llm1/` with the encoder; each folder holds `config.json` and
//! either `model.safetensors` or shards listed in `model.safetensors.index.json`.
//!
//! Reading memory-maps every shard (the bytes are paged in on use, never copied
//! whole); writing stages the whole folder beside its destination and renames it
//! into place, so an interrupted save never leaves a checkpoint that loads.

mod dtype;
pub mod health;
mod layout;
mod read;
mod write;

pub use dtype::DType;
pub use health::{HealthReport, TensorHealth};
pub use layout::{TensorSpec, decoder_tensors, encoder_tensors, encoder_tensors_to_write};
pub use read::{TensorStore, TensorView};
pub use write::{SaveOptions, WriteTensor, save_checkpoint};

use std::path::{Path, PathBuf};

use crate::config::{C3Config, ENCODER_DIR};
use crate::error::{Error, Result};

/// Single-file weights name.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Shard index name.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// An opened checkpoint: config plus memory-mapped tensors of both models, with
/// every tensor the architecture needs checked for presence, shape and dtype.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: C3Config,
    /// Root folder: decoder, `model.Q.weight`, `model.mm_projector.*`.
    pub root: TensorStore,
    /// `llm1/`: the encoder.
    pub llm1: TensorStore,
}

impl Checkpoint {
    /// Opens and validates `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Input(format!(
                "checkpoint {} is not a directory",
                dir.display()
            )));
        }
        let config = C3Config::load(dir)?;
        let root = TensorStore::open(dir)?;
        let llm1 = TensorStore::open(&dir.join(ENCODER_DIR))?;
        for spec in decoder_tensors(&config) {
            root.get_checked(&spec)?;
        }
        for spec in encoder_tensors(&config.encoder) {
            llm1.get_checked(&spec)?;
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            root,
            llm1,
        })
    }

    /// The dtype most tensors are stored in (that of the decoder's embedding).
    pub fn dtype(&self) -> DType {
        self.root
            .get("model.embed_tokens.weight")
            .map(|t| t.dtype)
            .unwrap_or(DType::F32)
    }

    /// Bytes of all tensors in both folders.
    pub fn total_bytes(&self) -> u64 {
        self.root.total_bytes() + self.llm1.total_bytes()
    }
}

#[cfg(test)]
mod tests;
