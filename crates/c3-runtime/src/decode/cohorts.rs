//! Concat-contract rows (standard attention): rows admitted together with the same
//! prompt form a cohort, a rectangular [`DecodeState`] whose rows share every
//! position; each step runs every cohort once. Requests arriving together still
//! share runs; a cohort leaves when its last row does.

use std::sync::Arc;

use c3_core::DecoderPrompt;

use super::cache::{KvCache, NewRow, Pick};
use super::feed::{prefix_feed, rest_feed};
use super::{DecodeState, Decoder, PromptPrefix};
use crate::Latents;
use crate::error::Result;
use crate::sessions::Feed;

/// Concat-contract rows, in cohorts of rectangular states.
pub(crate) struct Cohorts<'m> {
    dec: &'m Decoder,
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
    pub(crate) fn new(dec: &'m Decoder, capacity: usize, reuse_prefix: bool) -> Result<Self> {
        Ok(Cohorts {
            dec,
            capacity,
            list: Vec::new(),
            prefix: match reuse_prefix {
                true => dec.prompt_prefix()?.filter(|p| p.len <= capacity),
                false => None,
            },
        })
    }

    /// One cohort of rows sharing `prompt`.
    fn admit(
        &mut self,
        rows: &[NewRow<'_>],
        prompt: &DecoderPrompt,
        pick: &mut Pick<'_>,
    ) -> Result<()> {
        let dec = self.dec;
        let lats: Vec<&Latents> = rows.iter().map(|r| r.1).collect();
        let mut state = dec.decode_state(rows.len(), self.capacity)?;
        // The prompt in two parts: the constant prefix (copied from the runtime's
        // cache when this prompt starts with it, or run), then latents and suffix.
        match &self.prefix {
            Some(p) if p.fits(prompt) => state.load_prefix(p)?,
            _ if prompt.latent_start > 0 => state.forward_feed(prefix_feed(prompt, rows.len()))?,
            _ => {}
        }
        state.forward_feed(rest_feed(dec, &lats, prompt)?)?;
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
        let filler = self.dec.geo.pad_id;
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
