//! Per-request decoder state: the KV cache of a batch of rows and how many positions
//! it holds. Two cache contracts (export/CONTRACT.md, `kv_cache` in the manifest):
//!
//! - `shared_buffer`: one `[B, kv, capacity, hd]` tensor per layer and kind, allocated
//!   once per request and bound through an `IoBinding` as both `past_key_values.*`
//!   and `present.*`: the scheduler's slot cache (decode/slots.rs) with one slot per
//!   row. ONNX Runtime's GroupQueryAttention sees the same pointer on both sides and
//!   writes the new positions in place, so a step neither copies nor reallocates the
//!   cache; it reads only the first `len` positions.
//! - `concat`: the graph returns `present` = Concat(past, new), which is fed back as
//!   the next `past`. Every step copies the whole cache (standard ops; what TensorRT
//!   exports use).

use c3_core::KvCache;
use c3_core::contract::decoder as names;
use c3_onnx::ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use c3_onnx::ort::value::DynValue;

use std::sync::{Arc, OnceLock};

use c3_core::{DecoderPrompt, ExportManifest};

use crate::error::{Error, Result, ensure};
use crate::provider::Provider;
use crate::sessions::{Feed, Sessions};
use crate::values::{Embeds, float_value, i64_value, to_f32};

/// The decoder's shapes, from the manifest: what the caches are sized by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub kv_cache: KvCache,
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub hidden: usize,
    pub n_latents: usize,
    pub max_context: usize,
    pub pad_id: u32,
}

impl Geometry {
    pub(crate) fn of(m: &ExportManifest) -> Self {
        Geometry {
            kv_cache: m.kv_cache,
            layers: m.layers,
            kv_heads: m.kv_heads,
            head_dim: m.head_dim,
            vocab: m.vocab,
            hidden: m.hidden,
            n_latents: m.n_latents,
            max_context: m.max_context,
            pad_id: m.pad_id,
        }
    }
}

/// The decoding layer of a loaded export: its sessions, the decoder's shapes, where
/// caches live (the provider), the model's prompt and its prefix's cache. What every
/// KV cache and [`DecodeState`] runs on; `C3Runtime` (model.rs) holds one.
pub(crate) struct Decoder {
    pub(crate) sessions: Sessions,
    pub(crate) geo: Geometry,
    pub(crate) provider: Provider,
    /// The model's own prompt: its constant prefix is the one cached.
    pub(crate) prompt: DecoderPrompt,
    /// The prompt prefix's cache, computed on first use (decode/prefix.rs).
    prefix: OnceLock<Option<Arc<PromptPrefix>>>,
}

impl Decoder {
    pub(crate) fn new(
        sessions: Sessions,
        m: &ExportManifest,
        provider: Provider,
        prompt: DecoderPrompt,
    ) -> Self {
        Decoder {
            sessions,
            geo: Geometry::of(m),
            provider,
            prompt,
            prefix: OnceLock::new(),
        }
    }
}

/// The cache for the export's contract: room for `slots` rows of `capacity`
/// positions; `reuse_prefix` as in [`crate::RuntimeOptions::reuse_prompt_prefix`].
pub(crate) fn new_cache(
    dec: &Decoder,
    slots: usize,
    capacity: usize,
    reuse_prefix: bool,
) -> Result<Box<dyn cache::KvCache + '_>> {
    Ok(match dec.geo.kv_cache {
        KvCache::SharedBuffer => Box::new(SlotCache::new(dec, slots, capacity, reuse_prefix)?),
        KvCache::Concat => Box::new(cohorts::Cohorts::new(dec, capacity, reuse_prefix)?),
    })
}

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

enum Cache<'m> {
    /// The previous run's `present.*`, fed back as `past_key_values.*`, and the
    /// (past, present) names, built once rather than per step.
    Concat {
        past: Vec<(String, DynValue)>,
        names: Vec<(String, String)>,
    },
    /// One slot per row of the slot cache the scheduler decodes with, every row at
    /// the same length.
    Shared(Box<SlotCache<'m>>),
}

/// The decoder cache of one request: `batch` rows that advance together.
pub struct DecodeState<'m> {
    dec: &'m Decoder,
    batch: usize,
    len: usize,
    capacity: usize,
    cache: Cache<'m>,
    /// The last run's `logits` (concat cache), and that run's seq.
    last: Option<DynValue>,
    last_seq: usize,
    /// A run failed part-way: the cache may hold a half-written step (or, for
    /// concat, no past at all), so the state refuses further runs.
    broken: bool,
}

impl Decoder {
    /// An empty cache for `batch` rows that will hold at most `capacity` positions
    /// (prompt + generated; at most the decoder context). A shared-buffer export
    /// allocates its buffers here, once.
    pub(crate) fn decode_state(&self, batch: usize, capacity: usize) -> Result<DecodeState<'_>> {
        let m = &self.geo;
        check_cache_shape(m, batch, capacity)?;
        let names = names::cache_names(m.layers);
        let cache = match m.kv_cache {
            KvCache::Concat => {
                let empty = |_| -> Result<DynValue> {
                    float_value(
                        self.sessions.dtype,
                        &[batch, m.kv_heads, 0, m.head_dim],
                        &[],
                    )
                };
                let past = names
                    .iter()
                    .map(|(past, _)| Ok((past.clone(), empty(())?)))
                    .collect::<Result<_>>()?;
                Cache::Concat { past, names }
            }
            KvCache::SharedBuffer => {
                Cache::Shared(Box::new(SlotCache::new(self, batch, capacity, false)?))
            }
        };
        Ok(DecodeState {
            dec: self,
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

/// A cache of `rows` rows x `capacity` positions must have a row and fit the decoder.
pub(crate) fn check_cache_shape(m: &Geometry, rows: usize, capacity: usize) -> Result<()> {
    ensure!(rows > 0, Input, "a decoder cache needs at least one row");
    ensure!(
        capacity > 0 && capacity <= m.max_context,
        Input,
        "cache capacity {capacity} is outside 1..={} (the decoder context)",
        m.max_context
    );
    Ok(())
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
        let b = self.batch;
        Ok(match &mut self.cache {
            Cache::Concat { past, names } => {
                let values = self.dec.sessions.feed_values(feed)?;
                let mut dec = self.dec.sessions.decoder();
                let mut inputs: Vec<(String, DynValue)> = values
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                inputs.push((
                    names::ATTENTION_MASK.into(),
                    i64_value(&[b, total], vec![1; b * total])?,
                ));
                inputs.push((
                    names::POSITION_IDS.into(),
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
                out.remove(names::LOGITS)
            }
            Cache::Shared(slots) => {
                slots.run_all(feed, total)?;
                None
            }
        })
    }

    /// The logits of the last [`Self::forward`].
    pub fn logits(&self) -> Result<Logits<'_>> {
        let (b, seq, vocab) = (self.batch, self.last_seq, self.dec.geo.vocab);
        ensure!(seq > 0, Input, "no decoder run yet");
        // Last position only (exports since the last-position slice), or every
        // position the run fed (older exports); `Logits::last` reads either.
        let (data, out_seq) = match (&self.cache, &self.last) {
            (Cache::Shared(slots), _) => slots.logits()?,
            (Cache::Concat { .. }, Some(v)) => {
                let (shape, data) = v.try_extract_tensor::<f32>()?;
                (data, logits_seq(shape, b, seq, vocab)?)
            }
            (Cache::Concat { .. }, None) => {
                return Err(Error::Internal("the decoder returned no logits".into()));
            }
        };
        Ok(Logits {
            batch: b,
            seq: out_seq,
            vocab,
            data,
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
            let (m, dtype) = (&self.dec.geo, self.dec.sessions.dtype);
            for (_, v) in past.iter_mut() {
                let (shape, data) = to_f32(v, dtype)?;
                let (rows, t, hd) = (shape[0] * shape[1], shape[2], shape[3]);
                let kept: Vec<f32> = (0..rows)
                    .flat_map(|r| data[r * t * hd..(r * t + len) * hd].iter().copied())
                    .collect();
                *v = float_value(dtype, &[self.batch, m.kv_heads, len, hd], &kept)?;
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

pub(crate) mod cache;
mod cohorts;
pub(crate) mod feed;
mod prefix;
pub(crate) mod slots;

use slots::SlotCache;

use feed::empty_feed;
pub(crate) use prefix::PromptPrefix;

#[cfg(test)]
mod tests;
