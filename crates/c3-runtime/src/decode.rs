//! Per-request decoder state: the KV cache of a batch of rows and how many positions
//! it holds. Two cache contracts (export/CONTRACT.md, `kv_cache` in the manifest):
//!
//! - `shared_buffer`: one `[B, kv, capacity, hd]` tensor per layer and kind, allocated
//!   once per request and bound through an `IoBinding` as both `past_key_values.*`
//!   and `present.*`. ONNX Runtime's GroupQueryAttention sees the same pointer on
//!   both sides and writes the new positions in place, so a step neither copies nor
//!   reallocates the cache; it reads only the first `len` positions.
//! - `concat`: the graph returns `present` = Concat(past, new), which is fed back as
//!   the next `past`. Every step copies the whole cache (standard ops; what TensorRT
//!   exports use).

use c3_core::KvCache;
use c3_onnx::ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use c3_onnx::ort::session::IoBinding;
use c3_onnx::ort::value::{DynTensor, DynValue, Tensor};

use crate::error::{Error, Result, ensure};
use crate::model::{C3Runtime, lock};
use crate::provider::Provider;
use crate::values::{Embeds, alloc_tensor, float_value, i64_value, to_f32};

/// Logits of the last decoder run, `[batch, seq, vocab]` row-major f32, borrowed from
/// the output tensor (no copy per step).
#[derive(Debug, Clone, Copy)]
pub struct Logits<'a> {
    pub batch: usize,
    pub seq: usize,
    pub vocab: usize,
    pub data: &'a [f32],
}

impl Logits<'_> {
    /// The last position's logits of `row`.
    pub fn last(&self, row: usize) -> &[f32] {
        let start = (row * self.seq + self.seq - 1) * self.vocab;
        &self.data[start..start + self.vocab]
    }
}

enum Cache {
    /// The previous run's `present.*`, fed back as `past_key_values.*`, and the
    /// (past, present) names, built once rather than per step.
    Concat {
        past: Vec<(String, DynValue)>,
        names: Vec<(String, String)>,
    },
    /// Preallocated buffers bound as past and present (kept alive by the binding too).
    Shared(Box<Shared>),
}

/// Everything a shared-buffer state binds once and updates in place between runs.
struct Shared {
    binding: IoBinding,
    pub(super) buffers: Vec<DynTensor>,
    /// `seqlens_k` `[B]` and `total_sequence_length` `[]`: allocated once, written and
    /// bound again before every run.
    seqlens: Tensor<i32>,
    total: Tensor<i32>,
    /// `(seqlens_k, total_sequence_length)` as bound by each run, in order: what the
    /// unit tests check, since on the CPU a stale binding reads the same as a fresh one.
    #[cfg(test)]
    bound_lengths: Vec<(Vec<i32>, i32)>,
    /// `[B, 1, vocab]` logits of a step, bound from the first step on (a prefill's
    /// logits have another shape: ONNX Runtime allocates those).
    step_logits: Option<Tensor<f32>>,
}

/// The decoder cache of one request: `batch` rows that advance together.
pub struct DecodeState<'m> {
    rt: &'m C3Runtime,
    batch: usize,
    len: usize,
    capacity: usize,
    cache: Cache,
    /// The last run's `logits` when ONNX Runtime allocated them, and that run's seq.
    last: Option<DynValue>,
    last_seq: usize,
    /// A run failed part-way: the cache may hold a half-written step (or, for
    /// concat, no past at all), so the state refuses further runs.
    broken: bool,
}

impl C3Runtime {
    /// An empty cache for `batch` rows that will hold at most `capacity` positions
    /// (prompt + generated; at most the decoder context). A shared-buffer export
    /// allocates its buffers here, once.
    pub fn decode_state(&self, batch: usize, capacity: usize) -> Result<DecodeState<'_>> {
        let m = &self.manifest;
        check_cache_shape(m, batch, capacity)?;
        let names = cache_names(m.layers);
        let cache = match m.kv_cache {
            KvCache::Concat => {
                let empty = |_| -> Result<DynValue> {
                    float_value(self.dtype, &[batch, m.kv_heads, 0, m.head_dim], &[])
                };
                let past = names
                    .iter()
                    .map(|(past, _)| Ok((past.clone(), empty(())?)))
                    .collect::<Result<_>>()?;
                Cache::Concat { past, names }
            }
            KvCache::SharedBuffer => {
                let shape = [batch, m.kv_heads, capacity, m.head_dim];
                let dec = lock(&self.decoder);
                let alloc = cache_allocator(&dec, &self.options.provider);
                let mut binding = dec.create_binding()?;
                let mut buffers = Vec::with_capacity(names.len());
                for (past, present) in &names {
                    let mut buf = alloc_tensor(&alloc, self.dtype, &shape)?;
                    binding.bind_input(past, &buf)?;
                    binding.bind_output(present, &mut buf)?;
                    buffers.push(buf);
                }
                drop(dec);
                let host = Allocator::default();
                Cache::Shared(Box::new(Shared {
                    binding,
                    buffers,
                    seqlens: Tensor::<i32>::new(&host, [batch])?,
                    total: Tensor::<i32>::new(&host, [0usize; 0])?,
                    #[cfg(test)]
                    bound_lengths: Vec::new(),
                    step_logits: None,
                }))
            }
        };
        Ok(DecodeState {
            rt: self,
            batch,
            len: 0,
            capacity,
            cache,
            last: None,
            last_seq: 0,
            broken: false,
        })
    }
}

impl Shared {
    /// Writes `seqlens_k` `[B]` (= `total - 1`) and `total_sequence_length` `[]`, then
    /// binds them. Bound again every run, never only written: `IoBinding::bind_input`
    /// copies a host tensor to the device at bind time, so on CUDA a value rewritten
    /// in host memory after binding would never reach the kernel (on the CPU the
    /// binding aliases the host tensor, which hid this). No allocation per step.
    fn bind_lengths(&mut self, total: usize) -> Result<()> {
        let total =
            i32::try_from(total).map_err(|_| Error::Internal("position over i32".into()))?;
        self.seqlens.extract_tensor_mut().1.fill(total - 1);
        self.total.extract_tensor_mut().1[0] = total;
        self.binding.bind_input("seqlens_k", &self.seqlens)?;
        self.binding
            .bind_input("total_sequence_length", &self.total)?;
        #[cfg(test)]
        self.bound_lengths.push((
            self.seqlens.extract_tensor().1.to_vec(),
            self.total.extract_tensor().1[0],
        ));
        Ok(())
    }
}

/// A cache of `rows` rows x `capacity` positions must have a row and fit the decoder.
pub(crate) fn check_cache_shape(
    m: &c3_core::ExportManifest,
    rows: usize,
    capacity: usize,
) -> Result<()> {
    ensure!(rows > 0, Input, "a decoder cache needs at least one row");
    ensure!(
        capacity > 0 && capacity <= m.max_context,
        Input,
        "cache capacity {capacity} is outside 1..={} (the decoder context)",
        m.max_context
    );
    Ok(())
}

/// `(past_key_values.{i}.{kind}, present.{i}.{kind})` for every layer and kind.
fn cache_names(layers: usize) -> Vec<(String, String)> {
    (0..layers)
        .flat_map(|i| {
            ["key", "value"].map(|kind| {
                (
                    format!("past_key_values.{i}.{kind}"),
                    format!("present.{i}.{kind}"),
                )
            })
        })
        .collect()
}

fn host_memory() -> Result<MemoryInfo<'static>> {
    Ok(MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Device,
        MemoryType::Default,
    )?)
}

/// Where shared cache buffers live: host memory for the CPU provider, else the
/// session's device memory (so GPU steps do not copy the cache across the bus). If the
/// device allocator is unavailable (a fallback to the CPU), host memory: still
/// correct, since ONNX Runtime then copies and GroupQueryAttention sees two buffers.
fn cache_allocator(session: &c3_onnx::ort::session::Session, provider: &Provider) -> Allocator {
    if *provider != Provider::Cpu {
        let device = MemoryInfo::new(
            AllocationDevice::CUDA,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .and_then(|info| Allocator::new(session, info));
        if let Ok(a) = device {
            return a;
        }
    }
    Allocator::default()
}

impl DecodeState<'_> {
    /// Positions the cache holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows decoded together.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Most positions this state can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Runs `seq` new positions per row, given their embeddings `[batch, seq, hidden]`
    /// in the export dtype, appending them to the cache; [`Self::logits`] then holds
    /// their logits.
    pub fn forward(&mut self, embeds: Embeds, seq: usize) -> Result<()> {
        self.forward_feed(Feed::embeds(self.batch, embeds, seq))
    }

    /// [`Self::forward`] for any [`Feed`] (embeddings, then token ids).
    pub(crate) fn forward_feed(&mut self, feed: Feed) -> Result<()> {
        ensure!(
            !self.broken,
            Input,
            "this decoder state failed in an earlier run; start a new one"
        );
        ensure!(
            feed.rows == self.batch,
            Internal,
            "{} rows fed to a {}-row cache",
            feed.rows,
            self.batch
        );
        let seq = feed.seq();
        if seq == 0 {
            return Err(empty_feed());
        }
        let total = self.len + seq;
        ensure!(
            total <= self.capacity,
            Input,
            "{total} positions exceed the cache capacity ({})",
            self.capacity
        );
        // Shared-buffer rule (ONNX Runtime's GroupQueryAttention): several new
        // positions after a past only at batch 1; a prefill or one step is any batch.
        if matches!(self.cache, Cache::Shared(_)) && self.len > 0 && seq > 1 && self.batch > 1 {
            return Err(Error::Input(format!(
                "a shared-buffer cache takes one position per step at batch {}",
                self.batch
            )));
        }
        self.broken = true;
        self.last = self.run(feed, seq, total)?;
        self.broken = false;
        self.len = total;
        self.last_seq = seq;
        Ok(())
    }

    fn run(&mut self, feed: Feed, seq: usize, total: usize) -> Result<Option<DynValue>> {
        let (b, m) = (self.batch, &self.rt.manifest);
        let values = self.rt.feed_values(feed)?;
        let mut dec = lock(&self.rt.decoder);
        Ok(match &mut self.cache {
            Cache::Concat { past, names } => {
                let mut inputs: Vec<(String, DynValue)> = values
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                inputs.push((
                    "attention_mask".into(),
                    i64_value(&[b, total], vec![1; b * total])?,
                ));
                inputs.push((
                    "position_ids".into(),
                    i64_value(
                        &[b, seq],
                        (0..b).flat_map(|_| self.len as i64..total as i64).collect(),
                    )?,
                ));
                inputs.append(past);
                let mut out = dec.run(inputs)?;
                for (past_name, present) in names.iter() {
                    let v = out
                        .remove(present.as_str())
                        .ok_or_else(|| Error::Internal(format!("decoder returned no {present}")))?;
                    past.push((past_name.clone(), v));
                }
                out.remove("logits")
            }
            Cache::Shared(sh) => {
                sh.bind_lengths(total)?;
                for (name, v) in &values {
                    sh.binding.bind_input(*name, v)?;
                }
                if seq == 1 && sh.step_logits.is_none() {
                    let mut t = Tensor::<f32>::new(&Allocator::default(), [b, 1, m.vocab])?;
                    sh.binding.bind_output("logits", &mut t)?;
                    sh.step_logits = Some(t);
                } else if seq > 1 {
                    // Bound per run: drops the previous run's buffer of another shape.
                    sh.binding
                        .bind_output_to_device("logits", &host_memory()?)?;
                    sh.step_logits = None;
                }
                let mut out = dec.run_binding(&sh.binding)?;
                if sh.step_logits.is_some() {
                    None
                } else {
                    out.remove("logits")
                }
            }
        })
    }

    /// The logits of the last [`Self::forward`].
    pub fn logits(&self) -> Result<Logits<'_>> {
        let (b, seq, vocab) = (self.batch, self.last_seq, self.rt.manifest.vocab);
        ensure!(seq > 0, Input, "no decoder run yet");
        let data = match (&self.last, &self.cache) {
            (Some(v), _) => v.try_extract_tensor::<f32>()?,
            (None, Cache::Shared(sh)) => match &sh.step_logits {
                Some(t) => t.extract_tensor(),
                None => return Err(no_logits()),
            },
            (None, Cache::Concat { .. }) => return Err(no_logits()),
        };
        let got: &[i64] = data.0;
        // Last position only (exports since the last-position slice), or every
        // position the run fed (older exports); `Logits::last` reads either.
        let out_seq = logits_seq(got, b, seq, vocab)?;
        Ok(Logits {
            batch: b,
            seq: out_seq,
            vocab,
            data: data.1,
        })
    }

    /// Forgets every position at or after `len` (benchmarks time one step at a fixed
    /// position again and again). The shared buffer just moves its end; the concat
    /// cache is sliced (a copy).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        ensure!(
            len <= self.len,
            Input,
            "cannot truncate a {}-position cache to {len}",
            self.len
        );
        if let Cache::Concat { past, .. } = &mut self.cache {
            let m = &self.rt.manifest;
            for (_, v) in past.iter_mut() {
                let (shape, data) = to_f32(v, self.rt.dtype)?;
                let (rows, t, hd) = (shape[0] * shape[1], shape[2], shape[3]);
                let kept: Vec<f32> = (0..rows)
                    .flat_map(|r| data[r * t * hd..(r * t + len) * hd].iter().copied())
                    .collect();
                *v = float_value(self.rt.dtype, &[self.batch, m.kv_heads, len, hd], &kept)?;
            }
        }
        self.len = len;
        Ok(())
    }
}

/// The position count of decoder logits `got` for a run of `b` rows x `seq`
/// positions: 1 (the decoder computes the last position's only) or `seq` (exports
/// from before that).
pub(crate) fn logits_seq(got: &[i64], b: usize, seq: usize, vocab: usize) -> Result<usize> {
    match got {
        [gb, s, v] if *gb == b as i64 && *v == vocab as i64 && (*s == 1 || *s == seq as i64) => {
            Ok(*s as usize)
        }
        _ => Err(Error::Internal(format!(
            "decoder returned logits of shape {got:?}, expected [{b}, 1, {vocab}]"
        ))),
    }
}

fn no_logits() -> Error {
    Error::Internal("the decoder returned no logits".into())
}

pub(crate) mod batch;
mod feed;
mod prefix;
pub(crate) mod slots;

pub(crate) use feed::Feed;
use feed::empty_feed;
pub(crate) use prefix::PromptPrefix;

#[cfg(test)]
mod tests;
