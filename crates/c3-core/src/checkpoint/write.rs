//! Atomic writing of a checkpoint in the release layout.
//!
//! The folder is staged as a hidden sibling (`.NAME.partial-PID`) and renamed into
//! place only when every file is written and synced, so a crash or Ctrl-C leaves
//! either the old checkpoint or the new one, never a half one under the real name.
//! Tensor bytes are produced one tensor at a time ([`WriteTensor::bytes`] is called
//! while the file is written), so a multi-GB checkpoint never sits in RAM whole.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use safetensors::View;

use super::{DType, INDEX_FILE, WEIGHTS_FILE};
use crate::config::{C3Config, ENCODER_DIR};
use crate::error::{Error, Result};

/// A tensor to write: name, dtype, shape, and a producer of its bytes.
pub struct WriteTensor<'a> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    bytes: Box<dyn Fn() -> Cow<'a, [u8]> + 'a>,
}

impl<'a> WriteTensor<'a> {
    /// A tensor whose bytes are produced when written (random init, dtype conversion...).
    pub fn lazy(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        bytes: impl Fn() -> Cow<'a, [u8]> + 'a,
    ) -> Self {
        WriteTensor {
            name: name.into(),
            dtype,
            shape,
            bytes: Box::new(bytes),
        }
    }

    /// A tensor from f32 values, stored as `dtype`.
    pub fn from_f32(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        values: Vec<f32>,
    ) -> Self {
        Self::lazy(name, dtype, shape, move || {
            Cow::Owned(dtype.f32_to_bytes(&values))
        })
    }

    /// A tensor borrowing bytes already in `dtype`.
    pub fn borrowed(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        data: &'a [u8],
    ) -> Self {
        Self::lazy(name, dtype, shape, move || Cow::Borrowed(data))
    }

    fn nbytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

impl View for &WriteTensor<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype.to_st()
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        (self.bytes)()
    }
    fn data_len(&self) -> usize {
        self.nbytes()
    }
}

/// How to lay the files out.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Split each folder into shards of at most this many bytes (None: one file).
    pub shard_bytes: Option<u64>,
    /// Extra files copied into the root folder (tokenizer files), by name.
    pub root_files: Vec<(String, PathBuf)>,
    /// Overwrite an existing checkpoint at the destination.
    pub overwrite: bool,
}

/// Writes `cfg`, the root tensors and the `llm1/` tensors to `dest`, atomically.
pub fn save_checkpoint(
    dest: &Path,
    cfg: &C3Config,
    root: &[WriteTensor<'_>],
    llm1: &[WriteTensor<'_>],
    opts: &SaveOptions,
) -> Result<()> {
    if dest.exists() && !opts.overwrite {
        return Err(Error::Input(format!(
            "{} already exists (refusing to overwrite)",
            dest.display()
        )));
    }
    let stage = sibling(dest, "partial")?;
    let _cleanup = RemoveOnDrop(stage.clone());
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join(ENCODER_DIR)).map_err(|e| Error::io(&stage, e))?;

    write_folder(&stage, root, opts.shard_bytes)?;
    write_folder(&stage.join(ENCODER_DIR), llm1, opts.shard_bytes)?;
    for (name, src) in &opts.root_files {
        let to = stage.join(name);
        std::fs::copy(src, &to).map_err(|e| Error::io(src, e))?;
    }
    cfg.save(&stage)?;
    sync_dir_tree(&stage)?;

    if dest.exists() {
        let old = sibling(dest, "old")?;
        std::fs::rename(dest, &old).map_err(|e| Error::io(dest, e))?;
        std::fs::rename(&stage, dest).map_err(|e| Error::io(dest, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    } else {
        std::fs::rename(&stage, dest).map_err(|e| Error::io(dest, e))?;
    }
    Ok(())
}

/// Hidden sibling path `.NAME.KIND-PID` next to `dest`.
fn sibling(dest: &Path, kind: &str) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| Error::Input(format!("{}: not a folder name", dest.display())))?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    Ok(parent.join(format!(
        ".{}.{kind}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // After a successful rename the stage no longer exists; this only cleans failures.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_folder(dir: &Path, tensors: &[WriteTensor<'_>], shard_bytes: Option<u64>) -> Result<()> {
    let shards = split_shards(tensors, shard_bytes);
    let meta = Some(
        [("format".to_string(), "pt".to_string())]
            .into_iter()
            .collect(),
    );
    if shards.len() <= 1 {
        let path = dir.join(WEIGHTS_FILE);
        let items = tensors.iter().map(|t| (t.name.as_str(), t));
        return safetensors::serialize_to_file(items, meta, &path).map_err(|e| st_err(&path, e));
    }
    let n = shards.len();
    let mut weight_map = BTreeMap::new();
    let mut total: u64 = 0;
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
        let path = dir.join(&file);
        let items = shard.iter().map(|t| (t.name.as_str(), *t));
        safetensors::serialize_to_file(items, meta.clone(), &path).map_err(|e| st_err(&path, e))?;
        for t in shard {
            total += t.nbytes() as u64;
            weight_map.insert(t.name.clone(), file.clone());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    let path = dir.join(INDEX_FILE);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&index).unwrap_or_default(),
    )
    .map_err(|e| Error::io(&path, e))
}

/// Greedy split in the given order: a shard closes when the next tensor would overflow it.
fn split_shards<'t, 'a>(
    tensors: &'t [WriteTensor<'a>],
    limit: Option<u64>,
) -> Vec<Vec<&'t WriteTensor<'a>>> {
    let Some(limit) = limit else {
        return vec![tensors.iter().collect()];
    };
    let mut shards: Vec<Vec<&WriteTensor>> = vec![Vec::new()];
    let mut size = 0u64;
    for t in tensors {
        let b = t.nbytes() as u64;
        if size > 0 && size + b > limit {
            shards.push(Vec::new());
            size = 0;
        }
        size += b;
        shards.last_mut().expect("never empty").push(t);
    }
    shards
}

fn st_err(path: &Path, e: safetensors::SafeTensorError) -> Error {
    Error::Safetensors {
        path: path.into(),
        msg: e.to_string(),
    }
}

/// fsync every file and folder so the rename publishes data that is on disk.
fn sync_dir_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            sync_dir_tree(&path)?;
        } else {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&path, e))?;
        }
    }
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))
}
