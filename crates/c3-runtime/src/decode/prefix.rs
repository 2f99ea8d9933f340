//! The KV cache of the prompt's constant prefix (the system prompt up to `<img>`,
//! before the first latent): the same for every request of an export, so it is
//! computed once per loaded model and copied into each request's cache, which then
//! runs only the rest of the prompt (latents and suffix). Outputs are unchanged: a
//! position's keys and values depend only on the positions before it.

use std::sync::Arc;

use c3_core::{DType, DecoderPrompt};
use half::{bf16, f16};

use super::feed::prefix_feed;
use super::{Cache, DecodeState, Decoder};
use crate::error::Result;
use crate::values::{is_host, to_f32};

/// The prefix's keys and values, one entry per cache tensor (layer x key/value,
/// the decoder's `past_key_values.*` order), each `[kv_heads, len, head_dim]` f32.
#[derive(Debug)]
pub(crate) struct PromptPrefix {
    pub(crate) len: usize,
    pub(crate) kv: Vec<Vec<f32>>,
    /// The prefix's ids: a request's own prompt reuses the cache only if it starts
    /// with them (the same system part).
    ids: Vec<u32>,
}

impl PromptPrefix {
    /// Whether `prompt`'s constant prefix is this one.
    pub(crate) fn fits(&self, prompt: &DecoderPrompt) -> bool {
        prompt.latent_start == self.len && prompt.ids[..self.len] == self.ids[..]
    }

    /// Tensor `i` in the export dtype's little-endian bytes, as a shared buffer holds it.
    pub(crate) fn bytes(&self, i: usize, dtype: DType) -> Vec<u8> {
        let v = &self.kv[i];
        match dtype {
            DType::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            DType::F16 => v
                .iter()
                .flat_map(|&x| f16::from_f32(x).to_le_bytes())
                .collect(),
            DType::BF16 => v
                .iter()
                .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
                .collect(),
        }
    }
}

impl Decoder {
    /// The prompt prefix's cache, computed on first use; `None` where reuse does not
    /// apply (a prefix under two positions, or a cache in device memory, which the
    /// host cannot read or copy without the device's copy engine).
    pub(crate) fn prompt_prefix(&self) -> Result<Option<Arc<PromptPrefix>>> {
        if let Some(p) = self.prefix.get() {
            return Ok(p.clone());
        }
        // Two threads may both compute it; the values are equal and one is kept.
        let p = self.compute_prefix()?.map(Arc::new);
        Ok(self.prefix.get_or_init(|| p).clone())
    }

    fn compute_prefix(&self) -> Result<Option<PromptPrefix>> {
        let prompt = &self.prompt;
        let len = prompt.latent_start;
        if len < 2 || len > self.geo.max_context {
            return Ok(None);
        }
        let dtype = self.sessions.dtype;
        let mut state = self.decode_state(1, len)?;
        state.forward_feed(prefix_feed(prompt, 1))?;
        let kv = match &state.cache {
            Cache::Concat { past, .. } => past
                .iter()
                .map(|(_, v)| Ok(to_f32(v, dtype)?.1))
                .collect::<Result<Vec<_>>>()?,
            Cache::Shared(sh) => {
                // Capacity `len`: each buffer is exactly `[1, kv_heads, len, head_dim]`.
                let mut kv = Vec::with_capacity(sh.buffers.len());
                for b in &sh.buffers {
                    if !is_host(b) {
                        return Ok(None);
                    }
                    kv.push(to_f32(b, dtype)?.1);
                }
                kv
            }
        };
        let ids = prompt.ids[..len].to_vec();
        Ok(Some(PromptPrefix { len, kv, ids }))
    }
}

impl DecodeState<'_> {
    /// A concat-cache state of `batch` rows holding `prefix` in every row.
    pub(crate) fn load_prefix(&mut self, prefix: &PromptPrefix) -> Result<()> {
        let m = &self.dec.geo;
        let (b, len) = (self.batch, prefix.len);
        crate::error::ensure!(
            self.len == 0 && len <= self.capacity,
            Internal,
            "a prompt prefix goes into an empty cache that holds it"
        );
        match &mut self.cache {
            Cache::Concat { past, .. } => {
                for ((_, v), rows) in past.iter_mut().zip(&prefix.kv) {
                    let data: Vec<f32> = (0..b).flat_map(|_| rows.iter().copied()).collect();
                    *v = crate::values::float_value(
                        self.dec.sessions.dtype,
                        &[b, m.kv_heads, len, m.head_dim],
                        &data,
                    )?;
                }
            }
            Cache::Shared(_) => {
                return Err(crate::error::Error::Internal(
                    "shared-buffer states take a prefix through their slots".into(),
                ));
            }
        }
        self.len = len;
        Ok(())
    }
}
