//! A shared-buffer decoder cache of fixed slots whose rows join and leave between
//! steps: what the continuous-batching scheduler decodes into.
//!
//! One `[slots, kv_heads, capacity, head_dim]` buffer per layer and kind is allocated
//! once. A run covers a contiguous range of slots: views of those rows (same memory,
//! smaller batch dimension) are bound as both `past_key_values.*` and `present.*`, so
//! GroupQueryAttention writes each row's new position in place, at that row's own
//! length (`seqlens_k` is per row). Rows at different positions therefore share a
//! step, and a row that leaves only marks its slot free: nothing is copied, on the
//! CPU or on a GPU. A free slot inside the range runs as a one-position row (junk at
//! its position 0, overwritten by the next prefill into it).

use std::ops::Range;
use std::ptr::NonNull;

use c3_onnx::ort::AsPointer;
use c3_onnx::ort::memory::Allocator;
use c3_onnx::ort::session::IoBinding;
use c3_onnx::ort::value::{DynTensor, DynValue, Tensor, ValueType};

use c3_core::DecoderPrompt;
use c3_core::contract::decoder as names;

use super::cache::{KvCache, NewRow, Pick};
use super::feed::{prefix_feed, rest_feed};
use super::{Decoder, cache_allocator, check_cache_shape, host_memory, logits_seq};
use crate::Latents;
use crate::error::{Error, Result, ensure};
use crate::sessions::Feed;
use crate::values::{alloc_tensor, is_host};

/// The slots' buffers and the binding that runs them.
pub(crate) struct SlotCache<'m> {
    dec: &'m Decoder,
    capacity: usize,
    /// Positions each slot holds; 0 = free.
    lens: Vec<usize>,
    names: Vec<(String, String)>,
    alloc: Allocator,
    pub(super) buffers: Vec<DynTensor>,
    binding: IoBinding,
    /// The slot range the bound views cover, and the views (kept alive with them).
    bound: Option<Range<usize>>,
    _views: Vec<DynValue>,
    /// `[rows, 1, vocab]` step logits bound as an output, reused while the range is.
    step_logits: Option<Tensor<f32>>,
    /// The last run's logits when ONNX Runtime allocated them (several positions),
    /// and that run's rows and positions.
    last: Option<DynValue>,
    last_shape: (usize, usize),
    /// `(seqlens_k, total_sequence_length)` as bound by each run, in order: what the
    /// unit tests check, since on the CPU a stale binding reads the same as a fresh one.
    #[cfg(test)]
    pub(super) bound_lengths: Vec<(Vec<i32>, i32)>,
    /// The KV of the prompt's constant prefix (everything before the first latent),
    /// computed once per runtime: a new row gets it copied into its slot and runs
    /// only the rest of the prompt. None where the buffers are not in host memory.
    prefix: Option<Prefix>,
}

/// The prompt prefix's cache rows: per buffer, `kv_heads` runs of `len x head_dim`
/// values (export dtype bytes), as they sit at the start of a slot; and the prefix
/// itself, which a row's prompt must start with to use them.
struct Prefix {
    len: usize,
    rows: Vec<Vec<u8>>,
    of: std::sync::Arc<super::PromptPrefix>,
}

impl<'m> SlotCache<'m> {
    /// `slots` rows of `capacity` positions each (prompt + generated); with
    /// `reuse_prefix`, new rows start from the runtime's prompt-prefix cache.
    pub(crate) fn new(
        dec: &'m Decoder,
        slots: usize,
        capacity: usize,
        reuse_prefix: bool,
    ) -> Result<Self> {
        let m = &dec.geo;
        check_cache_shape(m, slots, capacity)?;
        let names = names::cache_names(m.layers);
        let session = dec.sessions.decoder();
        let alloc = cache_allocator(&session, &dec.provider);
        let binding = session.create_binding()?;
        drop(session);
        let shape = [slots, m.kv_heads, capacity, m.head_dim];
        let buffers = names
            .iter()
            .map(|_| alloc_tensor(&alloc, dec.sessions.dtype, &shape))
            .collect::<Result<Vec<_>>>()?;
        let mut cache = SlotCache {
            dec,
            capacity,
            lens: vec![0; slots],
            names,
            alloc,
            buffers,
            binding,
            bound: None,
            _views: Vec::new(),
            step_logits: None,
            last: None,
            last_shape: (0, 0),
            #[cfg(test)]
            bound_lengths: Vec::new(),
            prefix: None,
        };
        if reuse_prefix {
            cache.prefix = cache.prefix_rows()?;
        }
        Ok(cache)
    }

    /// The runtime's prompt-prefix cache as this cache's rows (host buffers only:
    /// copying device memory would need the device's copy engine).
    fn prefix_rows(&self) -> Result<Option<Prefix>> {
        let host = self.buffers.iter().all(is_host);
        let Some(p) = (if host {
            self.dec.prompt_prefix()?
        } else {
            None
        }) else {
            return Ok(None);
        };
        if p.len > self.capacity {
            return Ok(None);
        }
        let rows = (0..self.buffers.len())
            .map(|i| p.bytes(i, self.dec.sessions.dtype))
            .collect();
        Ok(Some(Prefix {
            len: p.len,
            rows,
            of: p,
        }))
    }

    /// Byte offset and length of positions `0..len` of head `h` of slot `s` in a
    /// buffer `[slots, kv_heads, capacity, head_dim]`.
    fn span(&self, s: usize, h: usize, len: usize) -> (usize, usize) {
        let m = &self.dec.geo;
        let elem = self.dec.sessions.dtype.size();
        let row = (s * m.kv_heads + h) * self.capacity * m.head_dim * elem;
        (row, len * m.head_dim * elem)
    }

    /// Copies the prompt prefix's cache rows into slot `s`.
    fn load_prefix(&mut self, s: usize) {
        let Some(p) = &self.prefix else { return };
        let kv = self.dec.geo.kv_heads;
        for (b, rows) in p.rows.iter().enumerate() {
            for (h, chunk) in rows.chunks_exact(rows.len() / kv).enumerate() {
                let (at, n) = self.span(s, h, p.len);
                let buf = &mut self.buffers[b];
                // SAFETY: host memory (checked in prefix_rows), inside the buffer's
                // `[slots, kv, capacity, hd]` allocation; `&mut self`: no run is in flight.
                unsafe {
                    let dst = (buf.data_ptr_mut() as *mut u8).add(at);
                    std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst, n);
                }
            }
        }
    }

    pub(crate) fn slots(&self) -> usize {
        self.lens.len()
    }

    /// Runs `prompt` for a new row in the free slot `s`; `pick(s, logits)` sees its
    /// last-position logits. In two parts: the constant prefix (copied from the
    /// runtime's cache when the prompt starts with it, or run), then the latents and
    /// the suffix. One row per call: GroupQueryAttention takes several new positions
    /// after a past at batch 1 only.
    fn prefill_row(
        &mut self,
        s: usize,
        lat: &Latents,
        prompt: &DecoderPrompt,
        pick: &mut Pick<'_>,
    ) -> Result<()> {
        ensure!(
            s < self.lens.len() && self.lens[s] == 0,
            Internal,
            "prefill into busy or missing slot {s}"
        );
        let (prompt_len, from) = (prompt.ids.len(), prompt.latent_start);
        ensure!(
            prompt_len <= self.capacity,
            Input,
            "the prompt ({prompt_len} tokens) is longer than the cache ({} positions)",
            self.capacity
        );
        let vocab = self.dec.geo.vocab;
        if self.prefix.as_ref().is_some_and(|p| p.of.fits(prompt)) {
            self.load_prefix(s);
        } else if from > 0 {
            let feed = prefix_feed(prompt, 1);
            self.run(s..s + 1, feed, &[from as i32 - 1], from as i32)?;
        }
        let feed = rest_feed(self.dec, &[lat], prompt)?;
        let total = prompt_len as i32;
        self.run(s..s + 1, feed, &[total - 1], total)?;
        let (l, _) = self.logits()?;
        pick(s, &l[l.len() - vocab..]);
        self.lens[s] = prompt_len;
        Ok(())
    }

    /// One step: `fed` holds every busy slot that advances; `tokens` has one token
    /// per slot of `range` (free slots inside it get any token). `pick(slot,
    /// logits)` sees each fed row's logits.
    fn step_range(
        &mut self,
        range: Range<usize>,
        fed: &[usize],
        tokens: Vec<u32>,
        pick: &mut Pick<'_>,
    ) -> Result<()> {
        let mut seqlens = vec![0i32; range.len()];
        let mut total = 1usize;
        for &s in fed {
            ensure!(
                range.contains(&s) && self.lens[s] > 0,
                Internal,
                "step on free or unbound slot {s}"
            );
            ensure!(
                self.lens[s] < self.capacity,
                Internal,
                "slot {s} is full ({} positions)",
                self.capacity
            );
            seqlens[s - range.start] = self.lens[s] as i32;
            total = total.max(self.lens[s] + 1);
        }
        let first = range.start;
        let vocab = self.dec.geo.vocab;
        let feed = Feed::ids(range.len(), tokens);
        self.run(range, feed, &seqlens, total as i32)?;
        let (l, _) = self.logits()?;
        for &s in fed {
            let at = (s - first) * vocab;
            pick(s, &l[at..at + vocab]);
        }
        for &s in fed {
            self.lens[s] += 1;
        }
        Ok(())
    }

    /// Binds views of `range`, the lengths and the fed inputs, and runs; the logits
    /// `[rows, seq_out, vocab]` are then read through [`Self::logits`], borrowed from
    /// the output (no copy of rows x vocab floats per step).
    fn run(&mut self, range: Range<usize>, feed: Feed, seqlens: &[i32], total: i32) -> Result<()> {
        let rows = range.len();
        let seq = feed.seq();
        let values = self.dec.sessions.feed_values(feed)?;
        if self.bound.as_ref() != Some(&range) {
            self.bind_views(range.clone())?;
        }
        let host = Allocator::default();
        // Lengths are fresh host tensors bound every run: binding copies a host value
        // to the device at bind time, so a rewrite after binding would never reach a
        // GPU kernel.
        let seq_t = Tensor::from_array(([rows], seqlens.to_vec()))?;
        let total_t = Tensor::from_array(([0usize; 0], vec![total]))?;
        self.binding.bind_input(names::SEQLENS_K, &seq_t)?;
        self.binding
            .bind_input(names::TOTAL_SEQUENCE_LENGTH, &total_t)?;
        #[cfg(test)]
        self.bound_lengths.push((seqlens.to_vec(), total));
        for (name, v) in &values {
            self.binding.bind_input(*name, v)?;
        }
        if seq == 1 {
            if self.step_logits.is_none() {
                let mut t = Tensor::<f32>::new(&host, [rows, 1, self.dec.geo.vocab])?;
                self.binding.bind_output(names::LOGITS, &mut t)?;
                self.step_logits = Some(t);
            }
        } else {
            self.binding
                .bind_output_to_device(names::LOGITS, &host_memory()?)?;
            self.step_logits = None;
        }
        self.last = None;
        self.last_shape = (0, 0);
        let mut session = self.dec.sessions.decoder();
        let mut out = session.run_binding(&self.binding)?;
        if self.step_logits.is_none() {
            let v = out
                .remove(names::LOGITS)
                .ok_or_else(|| Error::Internal("the decoder returned no logits".into()))?;
            self.last = Some(v);
        }
        drop(out);
        drop(session);
        self.last_shape = (rows, seq);
        Ok(())
    }

    /// The last run's logits `[rows, seq_out, vocab]` and `seq_out` (1, or every
    /// position from an export older than the last-position slice), borrowed from
    /// the output (no copy of rows x vocab floats per step).
    pub(super) fn logits(&self) -> Result<(&[f32], usize)> {
        let (rows, seq) = self.last_shape;
        ensure!(seq > 0, Input, "no decoder run yet");
        let data: &[f32] = match (&self.last, &self.step_logits) {
            (Some(v), _) => v.try_extract_tensor::<f32>()?.1,
            (None, Some(t)) => t.extract_tensor().1,
            (None, None) => return Err(Error::Internal("the decoder returned no logits".into())),
        };
        let vocab = self.dec.geo.vocab;
        let n = data.len() as i64;
        let shape = [rows as i64, n / (rows * vocab).max(1) as i64, vocab as i64];
        if shape.iter().product::<i64>() != n {
            return Err(Error::Internal(format!(
                "decoder returned {n} logits for {rows} rows of {vocab}"
            )));
        }
        Ok((data, logits_seq(&shape, rows, seq, vocab)?))
    }

    /// One run of `feed` over every slot at the same length (a [`super::DecodeState`]
    /// of these slots): `total` positions per row after it.
    pub(super) fn run_all(&mut self, feed: Feed, total: usize) -> Result<()> {
        let total =
            i32::try_from(total).map_err(|_| Error::Internal("position over i32".into()))?;
        let slots = self.slots();
        self.run(0..slots, feed, &vec![total - 1; slots], total)
    }

    /// Binds every layer's past and present to views of `range`'s rows.
    fn bind_views(&mut self, range: Range<usize>) -> Result<()> {
        let m = &self.dec.geo;
        let row_shape = [m.kv_heads, self.capacity, m.head_dim];
        let mut views = Vec::with_capacity(self.buffers.len() * 2);
        for (buf, (past, present)) in self.buffers.iter().zip(&self.names) {
            let input = row_view(buf, &self.alloc, range.clone(), &row_shape)?;
            let mut output = row_view(buf, &self.alloc, range.clone(), &row_shape)?;
            self.binding.bind_input(past, &input)?;
            self.binding.bind_output(present, &mut output)?;
            views.push(input);
            views.push(output);
        }
        // The logits buffer has the range's row count.
        self.step_logits = None;
        self._views = views;
        self.bound = Some(range);
        Ok(())
    }
}

impl KvCache for SlotCache<'_> {
    fn prefill(&mut self, rows: &[NewRow<'_>], pick: &mut Pick<'_>) -> Result<()> {
        for &(slot, lat, prompt) in rows {
            self.prefill_row(slot, lat, prompt, pick)?;
        }
        Ok(())
    }

    /// One run over the slots from the lowest fed to the highest.
    fn step(&mut self, feed: &[(usize, u32)], pick: &mut Pick<'_>) -> Result<()> {
        let (Some(lo), Some(hi)) = (
            feed.iter().map(|f| f.0).min(),
            feed.iter().map(|f| f.0).max(),
        ) else {
            return Ok(());
        };
        let mut tokens = vec![self.dec.geo.pad_id; hi + 1 - lo];
        for &(s, t) in feed {
            tokens[s - lo] = t;
        }
        let fed: Vec<usize> = feed.iter().map(|f| f.0).collect();
        self.step_range(lo..hi + 1, &fed, tokens, pick)
    }

    /// Marks the slot free (its buffer rows are simply reused).
    fn release(&mut self, slot: usize) {
        self.lens[slot] = 0;
    }

    fn reset(&mut self) {
        self.lens.iter_mut().for_each(|l| *l = 0);
    }
}

/// A tensor over rows `range` of `buf` (`[slots, ..row_shape]`), sharing its memory.
///
/// Built with the C API rather than `TensorRefMut::from_raw`: `ort` copies a borrowed
/// tensor when it is bound as an input, which would give GroupQueryAttention a past
/// and a present at different addresses (a copy of the whole cache per step). An
/// owned-looking value is bound as is. It does not free the memory when dropped
/// (ONNX Runtime never owns data passed to `CreateTensorWithDataAsOrtValue`); `buf`
/// outlives it because both live in the same [`SlotCache`] and views are dropped
/// first (re-bound) or with it.
fn row_view(
    buf: &DynTensor,
    alloc: &Allocator,
    range: Range<usize>,
    row_shape: &[usize; 3],
) -> Result<DynValue> {
    let ValueType::Tensor { ty, shape, .. } = buf.dtype() else {
        return Err(Error::Internal("cache buffer is not a tensor".into()));
    };
    let slots = shape[0] as usize;
    ensure!(
        range.end <= slots && !range.is_empty(),
        Internal,
        "slot range {range:?} outside {slots} slots"
    );
    let row_elems: usize = row_shape.iter().product();
    let elem = ty.byte_size(1).unwrap_or(4);
    let shape: Vec<i64> = std::iter::once(range.len())
        .chain(row_shape.iter().copied())
        .map(|d| d as i64)
        .collect();
    let api = c3_onnx::ort::api();
    let mut value = std::ptr::null_mut();
    // SAFETY: the pointer and length stay inside `buf`'s allocation (range checked
    // above); the memory info is `buf`'s own, so the device matches.
    unsafe {
        let data = (buf.data_ptr() as *mut u8).add(range.start * row_elems * elem);
        let status = (api.CreateTensorWithDataAsOrtValue)(
            buf.memory_info().ptr(),
            data.cast(),
            range.len() * row_elems * elem,
            shape.as_ptr(),
            shape.len(),
            (*ty).into(),
            &mut value,
        );
        if !status.0.is_null() {
            let msg = std::ffi::CStr::from_ptr((api.GetErrorMessage)(status.0))
                .to_string_lossy()
                .into_owned();
            (api.ReleaseStatus)(status.0);
            return Err(Error::Ort(msg));
        }
        let value = NonNull::new(value)
            .ok_or_else(|| Error::Ort("CreateTensorWithDataAsOrtValue returned null".into()))?;
        Ok(DynValue::from_ptr(value, Some(alloc)))
    }
}
