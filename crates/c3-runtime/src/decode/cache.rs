//! The KV cache a batch of rows decodes with, named by slot: what
//! `C3Runtime::generate` and the continuous-batching scheduler both drive through
//! one trait, [`KvCache`], with one implementation per cache contract:
//!
//! - `shared_buffer` exports: a `SlotCache` (decode/slots.rs), where rows at
//!   different positions share every step (per-row `seqlens_k`) and a leaving row
//!   just frees its slot;
//! - `concat` exports (standard attention, whose rows of one run must all have the
//!   same past length unless padded, and padding would change the float sums):
//!   `Cohorts` (decode/cohorts.rs), where rows admitted together with the same
//!   prompt form a cohort, a rectangular decode state; each step runs every cohort
//!   once. Requests arriving together still share runs.
//!
//! Rows are named by slot (`0..slots`), whichever the contract, and each row brings
//! its own prompt. With prefix reuse, a row whose prompt starts like the model's
//! starts from the runtime's prompt-prefix cache and runs only the rest of its
//! prompt (decode/prefix.rs).

use c3_core::DecoderPrompt;

use crate::Latents;
use crate::error::Result;

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
