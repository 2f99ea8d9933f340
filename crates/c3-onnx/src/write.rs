//! Writing a [`Model`] to disk: atomically, with large initializers streamed into an
//! external data file (`<model>.onnx.data`) so neither protobuf's 2 GiB limit nor RAM
//! bounds the model size.
//!
//! Both files are written to temporary names in the target directory, synced, then
//! renamed: the data file first, the model last, so the final model path never holds a
//! half-written file or a model whose data file is missing.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::model::{Model, PROTO_INLINE_LIMIT};
use crate::proto::StringStringEntryProto;
use crate::proto::tensor_proto::DataLocation;
use crate::tensor::raw_tensor;

/// When and how initializers go to the external data file.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// If all initializers together exceed this many bytes, those of at least
    /// `min_external_bytes` are written to `<model>.data`. Default 1.5 GiB.
    pub external_threshold: u64,
    /// Smaller initializers stay inline even in external mode. Default 1 KiB.
    pub min_external_bytes: u64,
    /// Offset alignment in the data file (lets runtimes mmap tensors). Default 4096.
    pub alignment: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            external_threshold: 3 << 29,
            min_external_bytes: 1024,
            alignment: 4096,
        }
    }
}

/// What [`Model::write`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteSummary {
    /// The `.onnx` file.
    pub model_path: PathBuf,
    /// The external data file, if any initializer went there.
    pub data_path: Option<PathBuf>,
    /// Size of the `.onnx` file.
    pub model_bytes: u64,
    /// Size of the external data file (with alignment padding).
    pub data_bytes: u64,
    /// Initializers stored externally.
    pub external_tensors: usize,
    /// Initializers stored inline.
    pub inline_tensors: usize,
}

/// A writer that knows how many bytes went through it (the current file offset).
struct Counting<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Model {
    /// Writes the model to `path` with [`WriteOptions::default`].
    pub fn write(&self, path: impl AsRef<Path>) -> Result<WriteSummary> {
        self.write_with(path, &WriteOptions::default())
    }

    /// Writes the model to `path` (and `<path>.data` if initializers go external).
    /// Streamed initializer sources are called once each, in graph order.
    pub fn write_with(&self, path: impl AsRef<Path>, opts: &WriteOptions) -> Result<WriteSummary> {
        let path = path.as_ref();
        let file_name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "model path needs a UTF-8 file name",
                ),
            )
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let data_name = format!("{file_name}.data");
        let data_path = dir.join(&data_name);

        let external = self.initializer_bytes() > opts.external_threshold;
        let goes_external = |bytes: u64| external && bytes >= opts.min_external_bytes;
        let inline_bytes: u64 = self
            .initializers
            .iter()
            .map(|i| i.byte_len)
            .filter(|&b| !goes_external(b))
            .sum();
        if inline_bytes > PROTO_INLINE_LIMIT {
            return Err(Error::TooLargeInline {
                path: path.to_owned(),
                bytes: inline_bytes,
            });
        }

        let mut data_tmp = None;
        let mut data_out: Option<Counting<BufWriter<File>>> = None;
        let mut tensors = Vec::with_capacity(self.initializers.len());
        let mut n_external = 0;
        for init in &self.initializers {
            if !goes_external(init.byte_len) {
                tensors.push(init.to_inline(path)?);
                continue;
            }
            let out = match data_out.as_mut() {
                Some(out) => out,
                None => {
                    let tmp = temp_in(&dir, &data_name)?;
                    let file = tmp
                        .as_file()
                        .try_clone()
                        .map_err(|e| Error::io(tmp.path(), e))?;
                    data_tmp = Some(tmp);
                    // Large buffer: sources often write element by element while converting dtype.
                    data_out.insert(Counting {
                        inner: BufWriter::with_capacity(8 << 20, file),
                        pos: 0,
                    })
                }
            };
            pad_to(out, opts.alignment).map_err(|e| Error::io(&data_path, e))?;
            let offset = out.pos;
            init.data
                .write_to(out)
                .map_err(|source| Error::InitializerSource {
                    name: init.name.clone(),
                    path: data_path.clone(),
                    source,
                })?;
            init.check_len(out.pos - offset)?;
            let mut t = raw_tensor(&init.name, init.dtype, &init.shape, Vec::new());
            t.raw_data = None;
            t.data_location = Some(DataLocation::External as i32);
            t.external_data = [
                ("location", data_name.clone()),
                ("offset", offset.to_string()),
                ("length", init.byte_len.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.to_owned()),
                value: Some(v),
            })
            .collect();
            tensors.push(t);
            n_external += 1;
            tracing::trace!(tensor = %init.name, offset, bytes = init.byte_len, "external initializer written");
        }
        let n_inline = tensors.len() - n_external;

        let data_bytes = match (data_out, &data_tmp) {
            (Some(out), Some(tmp)) => {
                let pos = out.pos;
                let file = out
                    .inner
                    .into_inner()
                    .map_err(|e| Error::io(tmp.path(), e.into_error()))?;
                file.sync_all().map_err(|e| Error::io(tmp.path(), e))?;
                pos
            }
            _ => 0,
        };

        let bytes = self.proto_with(tensors).encode_to_vec();
        let mut model_tmp = temp_in(&dir, file_name)?;
        model_tmp
            .write_all(&bytes)
            .map_err(|e| Error::io(model_tmp.path(), e))?;
        model_tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(model_tmp.path(), e))?;

        if let Some(tmp) = data_tmp {
            tmp.persist(&data_path)
                .map_err(|e| Error::io(&data_path, e.error))?;
        }
        model_tmp
            .persist(path)
            .map_err(|e| Error::io(path, e.error))?;
        if n_external == 0 && data_path.exists() {
            // A data file from an earlier, larger write would sit there unreferenced.
            tracing::debug!(path = %data_path.display(), "removing stale external data file");
            std::fs::remove_file(&data_path).map_err(|e| Error::io(&data_path, e))?;
        }
        // Make the renames durable too (best effort: not every file system allows it).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }

        tracing::info!(path = %path.display(), model_bytes = bytes.len(), data_bytes, n_external, n_inline, "ONNX model written");
        Ok(WriteSummary {
            model_path: path.to_owned(),
            data_path: (n_external > 0).then_some(data_path),
            model_bytes: bytes.len() as u64,
            data_bytes,
            external_tensors: n_external,
            inline_tensors: n_inline,
        })
    }
}

/// A temporary file beside the target, so the final rename stays on one file system.
fn temp_in(dir: &Path, target_name: &str) -> Result<tempfile::NamedTempFile> {
    let prefix = format!(".{target_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Temp files default to 0600; the renamed result should get the usual 0666 & !umask.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir.join(target_name), e))
}

/// Writes zeros up to the next multiple of `align` (0 or 1: no alignment).
fn pad_to<W: Write>(out: &mut Counting<W>, align: u64) -> std::io::Result<()> {
    if align <= 1 {
        return Ok(());
    }
    let pad = (align - out.pos % align) % align;
    std::io::copy(&mut std::io::repeat(0).take(pad), out)?;
    Ok(())
}
