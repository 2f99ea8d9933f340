//! Checkpoint tensors as ONNX initializers, streamed from the memory-mapped
//! safetensors straight into the output file at write time (converted to the export
//! dtype, transposed for `MatMul` where needed), so the weights are never held in RAM
//! a second time. Every payload counts itself as it is written, for progress bars.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use c3_core::{Checkpoint, DType, TensorView};
use c3_onnx::{ElemType, GraphBuilder, TensorData, Value};
use half::{bf16, f16};

use crate::error::Result;

use crate::progress::{Progress, Silent};

/// Payloads registered and written so far, shared by every clone of a [`Weights`].
#[derive(Default)]
pub struct Counters {
    /// Streamed payloads added to graphs.
    pub registered: AtomicUsize,
    pub written: AtomicUsize,
    pub written_bytes: AtomicU64,
}

/// Counts the bytes a payload source writes.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Runs `write` on a counting writer, then records the payload as written.
fn counted(
    counters: &Counters,
    progress: &dyn Progress,
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut c = Counting {
        inner: out,
        bytes: 0,
    };
    write(&mut c)?;
    counters.written.fetch_add(1, Ordering::Relaxed);
    counters.written_bytes.fetch_add(c.bytes, Ordering::Relaxed);
    progress.tensor_written(c.bytes);
    Ok(())
}

/// Which folder of the release layout a tensor lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folder {
    /// Root: decoder, `model.Q.weight`, `model.mm_projector.*`.
    Root,
    /// `llm1/`: the encoder.
    Llm1,
}

/// Adds checkpoint tensors to graphs as streamed initializers of one dtype.
#[derive(Clone)]
pub struct Weights {
    ck: Arc<Checkpoint>,
    /// The export precision: weights, activations and KV cache.
    pub dtype: DType,
    /// Weight-only quantization of the decoder's linears (and LM head), if any.
    pub quant: Option<crate::quantize::QuantSpec>,
    /// ONNX Runtime's fused normalisation op may be used (`--target ort`); standard
    /// ops otherwise (TensorRT).
    pub fused_norms: bool,
    counters: Arc<Counters>,
    progress: Arc<dyn Progress>,
}

impl Weights {
    pub fn new(
        ck: Arc<Checkpoint>,
        dtype: DType,
        quant: Option<crate::quantize::QuantSpec>,
    ) -> Self {
        Weights {
            ck,
            dtype,
            quant,
            fused_norms: false,
            counters: Arc::default(),
            progress: Arc::new(Silent),
        }
    }

    /// Builds norms with ONNX Runtime's `SimplifiedLayerNormalization`.
    pub fn with_fused_norms(mut self, fused: bool) -> Self {
        self.fused_norms = fused;
        self
    }

    /// Reports each payload written to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The export precision as a graph element type.
    pub fn elem(&self) -> ElemType {
        self.dtype.into()
    }

    /// Payloads registered and written so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A tensor of the checkpoint (for shapes; payloads are streamed).
    pub fn view(&self, folder: Folder, key: &str) -> c3_core::Result<TensorView<'_>> {
        Self::view_in(&self.ck, folder, key)
    }

    /// A payload produced at write time by `f` from the tensor `key`.
    pub fn stream(
        &self,
        folder: Folder,
        key: &str,
        f: impl Fn(&TensorView<'_>, &mut dyn Write) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> impl Fn(&mut dyn Write) -> std::io::Result<()> + Send + Sync + 'static {
        let (ck, key) = (Arc::clone(&self.ck), key.to_owned());
        let (counters, progress) = (Arc::clone(&self.counters), Arc::clone(&self.progress));
        self.counters.registered.fetch_add(1, Ordering::Relaxed);
        move |out: &mut dyn Write| {
            let view = Self::view_in(&ck, folder, &key).map_err(std::io::Error::other)?;
            counted(&counters, progress.as_ref(), out, |out| f(&view, out))
        }
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.ck
    }

    fn view_in<'a>(
        ck: &'a Checkpoint,
        folder: Folder,
        key: &str,
    ) -> c3_core::Result<TensorView<'a>> {
        match folder {
            Folder::Root => ck.root.get(key),
            Folder::Llm1 => ck.llm1.get(key),
        }
    }

    /// `key` as an initializer named `key`, same shape.
    pub fn plain(&self, g: &mut GraphBuilder, folder: Folder, key: &str) -> Result<Value> {
        self.add(g, folder, key, key, false)
    }

    /// The `[out, in]` Linear weight `key` as a `[in, out]` initializer named `<key>.T`,
    /// the right operand of `MatMul` (no runtime Transpose node, no constant folding).
    pub fn transposed(&self, g: &mut GraphBuilder, folder: Folder, key: &str) -> Result<Value> {
        self.add(g, folder, key, &format!("{key}.T"), true)
    }

    fn add(
        &self,
        g: &mut GraphBuilder,
        folder: Folder,
        key: &str,
        name: &str,
        transpose: bool,
    ) -> Result<Value> {
        let view = self.view(folder, key)?;
        let mut shape: Vec<i64> = view.shape.iter().map(|&d| d as i64).collect();
        if transpose {
            shape.reverse();
        }
        let (ck, key, to) = (Arc::clone(&self.ck), key.to_owned(), self.dtype);
        let (counters, progress) = (Arc::clone(&self.counters), Arc::clone(&self.progress));
        let source = move |out: &mut dyn Write| -> std::io::Result<()> {
            let view = Self::view_in(&ck, folder, &key).map_err(std::io::Error::other)?;
            counted(&counters, progress.as_ref(), out, |out| {
                if transpose {
                    write_transposed(&view, to, out)
                } else {
                    write_converted(&view, to, out)
                }
            })
        };
        // A weight name already present (tied embeddings) is reused, not duplicated.
        if let Some(v) = g.value(name) {
            return Ok(v);
        }
        self.counters.registered.fetch_add(1, Ordering::Relaxed);
        Ok(g.initializer(name, self.elem(), &shape, TensorData::stream(source))?)
    }
}

/// Element `i` of raw little-endian `bytes` of dtype `dt` as f32 (exact).
pub fn read_f32(dt: DType, bytes: &[u8], i: usize) -> f32 {
    match dt {
        DType::F32 => f32::from_le_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ]),
        DType::F16 => f16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]).to_f32(),
        DType::BF16 => bf16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]).to_f32(),
    }
}

/// Appends `v` encoded as `to` (round to nearest even).
fn put(to: DType, v: f32, out: &mut Vec<u8>) {
    match to {
        DType::F16 => out.extend(f16::from_f32(v).to_le_bytes()),
        DType::BF16 => out.extend(bf16::from_f32(v).to_le_bytes()),
        DType::F32 => out.extend(v.to_le_bytes()),
    }
}

/// Writes the tensor in dtype `to`, in chunks (raw bytes when the dtype already matches).
fn write_converted(view: &TensorView<'_>, to: DType, out: &mut dyn Write) -> std::io::Result<()> {
    if view.dtype == to {
        return out.write_all(view.data);
    }
    const CHUNK: usize = 1 << 16;
    let n = view.numel();
    let mut buf = Vec::with_capacity(CHUNK * 4);
    for start in (0..n).step_by(CHUNK) {
        buf.clear();
        for i in start..(start + CHUNK).min(n) {
            put(to, read_f32(view.dtype, view.data, i), &mut buf);
        }
        out.write_all(&buf)?;
    }
    Ok(())
}

/// Writes the transpose of a 2-D `[r, c]` tensor as `[c, r]` in dtype `to`. Output
/// rows are produced in blocks so each source row is read in contiguous runs.
fn write_transposed(view: &TensorView<'_>, to: DType, out: &mut dyn Write) -> std::io::Result<()> {
    let (r, c) = match view.shape {
        [r, c] => (*r, *c),
        s => {
            return Err(std::io::Error::other(format!(
                "`{}`: cannot transpose shape {s:?}",
                view.name
            )));
        }
    };
    const BLOCK: usize = 64;
    let mut vals = vec![0f32; BLOCK * r];
    let mut buf = Vec::with_capacity(BLOCK * r * 4);
    for c0 in (0..c).step_by(BLOCK) {
        let bs = BLOCK.min(c - c0);
        for i in 0..r {
            for k in 0..bs {
                vals[k * r + i] = read_f32(view.dtype, view.data, i * c + c0 + k);
            }
        }
        buf.clear();
        for &v in &vals[..bs * r] {
            put(to, v, &mut buf);
        }
        out.write_all(&buf)?;
    }
    Ok(())
}
