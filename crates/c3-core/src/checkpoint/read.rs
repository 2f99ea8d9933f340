//! Memory-mapped reading of one folder's safetensors (single file or sharded).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::SafeTensors;
use safetensors::tensor::Metadata;

use super::{DType, INDEX_FILE, TensorSpec, WEIGHTS_FILE};
use crate::error::{Error, Result};

/// A borrowed tensor: raw little-endian bytes straight from the mapping.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
    /// The file it lives in, for error messages.
    pub path: &'a Path,
}

impl TensorView<'_> {
    /// Values as f32 (one copy, the only one).
    pub fn to_f32(&self) -> Vec<f32> {
        self.dtype.bytes_to_f32(self.data)
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

struct Shard {
    path: PathBuf,
    mmap: Mmap,
    meta: Metadata,
}

/// All tensors of one folder, memory-mapped.
pub struct TensorStore {
    dir: PathBuf,
    shards: Vec<Shard>,
    /// name -> (shard, dtype, shape, byte range in the mapping)
    index: HashMap<String, Entry>,
}

struct Entry {
    shard: usize,
    dtype: DType,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

impl TensorStore {
    /// Opens `dir/model.safetensors` or the shards named by `dir/model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join(INDEX_FILE);
        let files: Vec<PathBuf> = if index_path.is_file() {
            shard_files(&index_path)?
                .into_iter()
                .map(|f| dir.join(f))
                .collect()
        } else {
            let single = dir.join(WEIGHTS_FILE);
            if !single.is_file() {
                return Err(Error::Input(format!(
                    "{}: neither {WEIGHTS_FILE} nor {INDEX_FILE} found",
                    dir.display()
                )));
            }
            vec![single]
        };
        let mut store = TensorStore {
            dir: dir.to_path_buf(),
            shards: Vec::new(),
            index: HashMap::new(),
        };
        for path in files {
            store.add_shard(path)?;
        }
        Ok(store)
    }

    fn add_shard(&mut self, path: PathBuf) -> Result<()> {
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the mapping is read-only; a checkpoint being rewritten under us is
        // replaced by rename (a new inode), never modified in place by our tools.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let bad = |msg: String| Error::Safetensors {
            path: path.clone(),
            msg,
        };
        let (n, meta) = SafeTensors::read_metadata(&mmap).map_err(|e| bad(e.to_string()))?;
        let data_start = 8 + n;
        let shard = self.shards.len();
        for (name, info) in meta.tensors() {
            let dtype = DType::from_st(info.dtype).ok_or_else(|| Error::TensorDtype {
                name: name.clone(),
                path: path.clone(),
                dtype: format!("{:?}", info.dtype),
            })?;
            let (s, e) = info.data_offsets;
            let entry = Entry {
                shard,
                dtype,
                shape: info.shape.clone(),
                start: data_start + s,
                end: data_start + e,
            };
            if self.index.insert(name.clone(), entry).is_some() {
                return Err(bad(format!(
                    "tensor `{name}` appears in more than one shard"
                )));
            }
        }
        self.shards.push(Shard { path, mmap, meta });
        Ok(())
    }

    /// The folder this store reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks a tensor up by checkpoint key.
    pub fn get(&self, name: &str) -> Result<TensorView<'_>> {
        let (key, e) = self
            .index
            .get_key_value(name)
            .ok_or_else(|| Error::MissingTensor {
                name: name.into(),
                dir: self.dir.clone(),
            })?;
        let shard = &self.shards[e.shard];
        Ok(TensorView {
            name: key,
            dtype: e.dtype,
            shape: &e.shape,
            data: &shard.mmap[e.start..e.end],
            path: &shard.path,
        })
    }

    /// Like [`get`](Self::get), and checks the shape against the layout.
    pub fn get_checked(&self, spec: &TensorSpec) -> Result<TensorView<'_>> {
        let t = self.get(&spec.name)?;
        if t.shape != spec.shape.as_slice() {
            return Err(Error::TensorShape {
                name: spec.name.clone(),
                path: t.path.to_path_buf(),
                got: t.shape.to_vec(),
                expected: spec.shape.clone(),
            });
        }
        Ok(t)
    }

    /// Whether a tensor exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.index.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Bytes of tensor data in this folder.
    pub fn total_bytes(&self) -> u64 {
        self.index.values().map(|e| (e.end - e.start) as u64).sum()
    }

    /// User metadata of the first shard (`__metadata__`), e.g. `format`.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.shards.first().and_then(|s| s.meta.metadata().as_ref())
    }

    /// The shard files, in index order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.shards.iter().map(|s| s.path.as_path())
    }
}

/// Distinct shard file names of an index, in first-seen order.
fn shard_files(index_path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(index_path).map_err(|e| Error::io(index_path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Json {
        path: index_path.into(),
        source: e,
    })?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::config(index_path, "no `weight_map` object"))?;
    let mut files: Vec<String> = Vec::new();
    for (name, f) in map {
        let f = f.as_str().ok_or_else(|| {
            Error::config(index_path, format!("weight_map[`{name}`] is not a string"))
        })?;
        // A shard name is a file beside the index, never a path elsewhere.
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(Error::config(
                index_path,
                format!("shard name `{f}` is not a plain file name"),
            ));
        }
        if !files.iter().any(|x| x == f) {
            files.push(f.to_string());
        }
    }
    files.sort();
    Ok(files)
}
