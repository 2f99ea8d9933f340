//! A batch of decoding rows named by slot, for either cache contract: what
//! [`C3Runtime::generate`] and the continuous-batching scheduler both decode with.
//!
//! - `shared_buffer` exports: a [`SlotCache`], where rows at different positions
//!   share every step (per-row `seqlens_k`) and a leaving row just frees its slot;
//! - `concat` exports (standard attention, whose rows of one run must all have the
//!   same past length unless padded, and padding would change the float sums): rows
//!   admitted together form a cohort, a rectangular [`DecodeState`]; each step runs
//!   every cohort once. Requests arriving together still share runs.
//!
//! Rows are named by slot (`0..slots`), whichever the contract. With prefix reuse,
//! a new row starts from the runtime's prompt-prefix cache and runs only the rest of
//! its prompt (decode/prefix.rs).

use std::sync::Arc;

use c3_core::KvCache;

use crate::Latents;
use crate::decode::slots::SlotCache;
use crate::decode::{DecodeState, Feed, PromptPrefix};
use crate::error::Result;
use crate::model::C3Runtime;

pub(crate) enum Batch<'m> {
    Slots(Box<SlotCache<'m>>),
    Cohorts {
        rt: &'m C3Runtime,
        capacity: usize,
        list: Vec<Cohort<'m>>,
        prefix: Option<Arc<PromptPrefix>>,
    },
}

pub(crate) struct Cohort<'m> {
    state: DecodeState<'m>,
    /// The slot of each batch row, and whether it still decodes.
    slots: Vec<usize>,
    live: Vec<bool>,
}

impl<'m> Batch<'m> {
    /// Room for `slots` rows of `capacity` positions; `reuse_prefix` as in
    /// [`crate::RuntimeOptions::reuse_prompt_prefix`].
    pub(crate) fn new(
        rt: &'m C3Runtime,
        slots: usize,
        capacity: usize,
        reuse_prefix: bool,
    ) -> Result<Self> {
        Ok(match rt.manifest.kv_cache {
            KvCache::SharedBuffer => {
                Batch::Slots(Box::new(SlotCache::new(rt, slots, capacity, reuse_prefix)?))
            }
            KvCache::Concat => Batch::Cohorts {
                rt,
                capacity,
                list: Vec::new(),
                prefix: match reuse_prefix {
                    true => rt.prompt_prefix()?.filter(|p| p.len <= capacity),
                    false => None,
                },
            },
        })
    }

    /// Runs the prompt of new rows `(slot, latents)` (free slots); `pick(slot,
    /// logits)` sees each row's last-position logits.
    pub(crate) fn prefill(
        &mut self,
        rows: &[(usize, &Latents)],
        pick: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<()> {
        match self {
            Batch::Slots(cache) => {
                for &(slot, lat) in rows {
                    cache.prefill(slot, lat, pick)?;
                }
            }
            Batch::Cohorts {
                rt,
                capacity,
                list,
                prefix,
            } => {
                let lats: Vec<&Latents> = rows.iter().map(|r| r.1).collect();
                let mut state = rt.decode_state(rows.len(), *capacity)?;
                // The prompt in two parts: the constant prefix (copied from the
                // runtime's cache, or run), then the latents and the suffix.
                match prefix {
                    Some(p) => state.load_prefix(p)?,
                    None if rt.manifest.prompt.latent_start > 0 => {
                        state.forward_feed(rt.prefix_feed(rows.len()))?
                    }
                    None => {}
                }
                state.forward_feed(rt.rest_feed(&lats)?)?;
                let logits = state.logits()?;
                for (r, &(slot, _)) in rows.iter().enumerate() {
                    pick(slot, logits.last(r));
                }
                list.push(Cohort {
                    state,
                    slots: rows.iter().map(|r| r.0).collect(),
                    live: vec![true; rows.len()],
                });
            }
        }
        Ok(())
    }

    /// One step of every row in `feed` `(slot, token to feed)`; `pick(slot, logits)`
    /// sees each of them.
    pub(crate) fn step(
        &mut self,
        rt: &C3Runtime,
        feed: &[(usize, u32)],
        pick: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<()> {
        let filler = rt.manifest.pad_id;
        match self {
            Batch::Slots(cache) => {
                let (Some(lo), Some(hi)) = (
                    feed.iter().map(|f| f.0).min(),
                    feed.iter().map(|f| f.0).max(),
                ) else {
                    return Ok(());
                };
                let mut tokens = vec![filler; hi + 1 - lo];
                for &(s, t) in feed {
                    tokens[s - lo] = t;
                }
                let fed: Vec<usize> = feed.iter().map(|f| f.0).collect();
                cache.step(lo..hi + 1, &fed, tokens, pick)?;
            }
            Batch::Cohorts { list, .. } => {
                for c in list.iter_mut() {
                    let mut tokens = vec![filler; c.slots.len()];
                    let mut any = false;
                    for (r, s) in c.slots.iter().enumerate() {
                        if let Some(&(_, t)) = feed.iter().find(|f| f.0 == *s) {
                            tokens[r] = t;
                            any = true;
                        }
                    }
                    if !any {
                        continue;
                    }
                    c.state.forward_feed(Feed::ids(tokens.len(), tokens))?;
                    let logits = c.state.logits()?;
                    for (r, s) in c.slots.iter().enumerate() {
                        if c.live[r] && feed.iter().any(|f| f.0 == *s) {
                            pick(*s, logits.last(r));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Frees `slot` (its row finished or was cancelled).
    pub(crate) fn release(&mut self, slot: usize) {
        match self {
            Batch::Slots(cache) => cache.release(slot),
            Batch::Cohorts { list, .. } => {
                for c in list.iter_mut() {
                    for (r, s) in c.slots.iter().enumerate() {
                        if *s == slot {
                            c.live[r] = false;
                        }
                    }
                }
                list.retain(|c| c.live.iter().any(|&l| l));
            }
        }
    }

    /// Forgets every row (after a failed run, whose cache may be half written).
    pub(crate) fn reset(&mut self) {
        match self {
            Batch::Slots(cache) => {
                for s in 0..cache.slots() {
                    cache.release(s);
                }
            }
            Batch::Cohorts { list, .. } => list.clear(),
        }
    }
}
