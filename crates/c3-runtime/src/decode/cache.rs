//! The KV cache a batch of rows decodes with, named by slot: what
//! [`C3Runtime::generate`] and the continuous-batching scheduler both drive through
//! one trait, [`KvCache`], with one implementation per cache contract:
//!
//! - `shared_buffer` exports: a [`SlotCache`] (decode/slots.rs), where rows at
//!   different positions share every step (per-row `seqlens_k`) and a leaving row
//!   just frees its slot;
//! - `concat` exports (standard attention, whose rows of one run must all have the
//!   same past length unless padded, and padding would change the float sums):
//!   [`Cohorts`], where rows admitted together with the same prompt form a cohort, a
//!   rectangular [`DecodeState`]; each step runs every cohort once. Requests
//!   arriving together still share runs.
//!
//! Rows are named by slot (`0..slots`), whichever the contract, and each row brings
//! its own prompt. With prefix reuse, a row whose prompt starts like the model's
//! starts from the runtime's prompt-prefix cache and runs only the rest of its
//! prompt (decode/prefix.rs).

use std::sync::Arc;

use c3_core::{DecoderPrompt, KvCache as Contract};

use crate::Latents;
use crate::decode::feed::{prefix_feed, rest_feed};
use crate::decode::slots::SlotCache;
use crate::decode::{DecodeState, Feed, PromptPrefix};
use crate::error::Result;
use crate::model::C3Runtime;

/// A new row: its slot, latents and prompt.
pub(crate) type NewRow<'a> = (usize, &'a Latents, &'a DecoderPrompt);

/// Receives `(slot, last-position logits)` for every row a run advanced.
pub(crate) type Pick<'a> = dyn FnMut(usize, &[f32]) + 'a;

/// A decoder cache of named slots that rows join (prefill), advance together (step)
/// and leave (release).
pub(crate) trait KvCache {
    /// Runs the prompt of new rows into their (free) slots; `pick` sees each row's
    /// last-position logits.
    fn prefill(&mut self, rows: &[NewRow<'_>], pick: &mut Pick<'_>) -> Result<()>;
    /// One step of every row in `feed` `(slot, token to feed)`.
    fn step(&mut self, feed: &[(usize, u32)], pick: &mut Pick<'_>) -> Result<()>;
    /// Frees `slot` (its row finished or was cancelled).
    fn release(&mut self, slot: usize);
    /// Forgets every row (after a failed run, whose cache may be half written).
    fn reset(&mut self);
}

/// The cache for `rt`'s contract: room for `slots` rows of `capacity` positions;
/// `reuse_prefix` as in [`crate::RuntimeOptions::reuse_prompt_prefix`].
pub(crate) fn new_cache<'m>(
    rt: &'m C3Runtime,
    slots: usize,
    capacity: usize,
    reuse_prefix: bool,
) -> Result<Box<dyn KvCache + 'm>> {
    Ok(match rt.manifest.kv_cache {
        Contract::SharedBuffer => Box::new(SlotCache::new(rt, slots, capacity, reuse_prefix)?),
        Contract::Concat => Box::new(Cohorts {
            rt,
            capacity,
            list: Vec::new(),
            prefix: match reuse_prefix {
                true => rt.prompt_prefix()?.filter(|p| p.len <= capacity),
                false => None,
            },
        }),
    })
}

/// Concat-contract rows, in cohorts of rectangular states.
pub(crate) struct Cohorts<'m> {
    rt: &'m C3Runtime,
    capacity: usize,
    list: Vec<Cohort<'m>>,
    prefix: Option<Arc<PromptPrefix>>,
}

struct Cohort<'m> {
    state: DecodeState<'m>,
    /// The slot of each batch row, and whether it still decodes.
    slots: Vec<usize>,
    live: Vec<bool>,
}

impl<'m> Cohorts<'m> {
    /// One cohort of rows sharing `prompt`.
    fn admit(
        &mut self,
        rows: &[NewRow<'_>],
        prompt: &DecoderPrompt,
        pick: &mut Pick<'_>,
    ) -> Result<()> {
        let rt = self.rt;
        let lats: Vec<&Latents> = rows.iter().map(|r| r.1).collect();
        let mut state = rt.decode_state(rows.len(), self.capacity)?;
        // The prompt in two parts: the constant prefix (copied from the runtime's
        // cache when this prompt starts with it, or run), then latents and suffix.
        match &self.prefix {
            Some(p) if p.fits(prompt) => state.load_prefix(p)?,
            _ if prompt.latent_start > 0 => state.forward_feed(prefix_feed(prompt, rows.len()))?,
            _ => {}
        }
        state.forward_feed(rest_feed(rt, &lats, prompt)?)?;
        let logits = state.logits()?;
        for (r, row) in rows.iter().enumerate() {
            pick(row.0, logits.last(r));
        }
        self.list.push(Cohort {
            state,
            slots: rows.iter().map(|r| r.0).collect(),
            live: vec![true; rows.len()],
        });
        Ok(())
    }
}

impl KvCache for Cohorts<'_> {
    fn prefill(&mut self, rows: &[NewRow<'_>], pick: &mut Pick<'_>) -> Result<()> {
        // Rows of one cohort share their positions, so one prompt per cohort.
        let mut rest: Vec<NewRow<'_>> = rows.to_vec();
        while let Some(&(_, _, prompt)) = rest.first() {
            let (same, other): (Vec<_>, Vec<_>) =
                rest.into_iter().partition(|r| r.2.ids == prompt.ids);
            self.admit(&same, prompt, pick)?;
            rest = other;
        }
        Ok(())
    }

    fn step(&mut self, feed: &[(usize, u32)], pick: &mut Pick<'_>) -> Result<()> {
        let filler = self.rt.manifest.pad_id;
        for c in self.list.iter_mut() {
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
        Ok(())
    }

    fn release(&mut self, slot: usize) {
        for c in self.list.iter_mut() {
            for (r, s) in c.slots.iter().enumerate() {
                if *s == slot {
                    c.live[r] = false;
                }
            }
        }
        self.list.retain(|c| c.live.iter().any(|&l| l));
    }

    fn reset(&mut self) {
        self.list.clear();
    }
}
