//! Documents of any length: split into windows of the model's length on token
//! boundaries, each window compressed to its own N latents, and the decoded
//! windows joined back in order.
//!
//! Why windows look the way they do (measured, docs/training/README.md): a model
//! trained on windows of exactly W tokens reconstructs W-token windows almost
//! perfectly but a shorter text poorly (it does not know where to stop). So:
//! - a document of W tokens or fewer is one window, padded to W with the pad id when
//!   the model was trained on fixed windows; its output is cut after its own length;
//! - a longer document is cut into full windows; when the last one would be short,
//!   it is instead the document's *last* W tokens, overlapping the previous window,
//!   and its first `skip` decoded tokens (the overlap) are dropped when joining.
//!
//! Joining works on token ids and decodes the whole document once, so a UTF-8
//! character split across a window boundary comes back whole.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::generation::{FinishReason, Generated, GenerationConfig};

/// How a model's documents are windowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    /// Text tokens per window.
    pub window: usize,
    /// Pad every window shorter than this to this length (the model's fixed
    /// training window), or `None` for models trained on varying lengths.
    pub pad_to: Option<usize>,
    pub pad_id: u32,
}

impl WindowPlan {
    /// `window`: the requested length (`None`: the model's trained window, else the
    /// encoder's limit). `trained`: the model's fixed training window, if it has one.
    pub fn new(
        window: Option<usize>,
        trained: Option<usize>,
        max_text_tokens: usize,
        pad_id: u32,
    ) -> Result<Self> {
        let w = window.or(trained).unwrap_or(max_text_tokens);
        if w == 0 || w > max_text_tokens {
            return Err(Error::Input(format!(
                "window of {w} tokens: must be in 1..={max_text_tokens} (the encoder's limit)"
            )));
        }
        // Padding only makes sense up to the trained length, and only if it fits.
        let pad_to = trained.filter(|&t| t >= w && t <= max_text_tokens);
        Ok(WindowPlan {
            window: w,
            pad_to,
            pad_id,
        })
    }

    /// The windows of document `doc` of `len` tokens, in order.
    pub fn split(&self, doc: usize, len: usize) -> Vec<Window> {
        let w = self.window;
        let pad_of = |tokens: usize| self.pad_to.map_or(0, |p| p.saturating_sub(tokens));
        if len <= w {
            return vec![Window {
                doc,
                start: 0,
                tokens: len,
                skip: 0,
                pad: pad_of(len),
            }];
        }
        let mut out: Vec<Window> = (0..len / w)
            .map(|k| Window {
                doc,
                start: k * w,
                tokens: w,
                skip: 0,
                pad: pad_of(w),
            })
            .collect();
        let covered = (len / w) * w;
        if covered < len {
            out.push(Window {
                doc,
                start: len - w,
                tokens: w,
                skip: covered - (len - w),
                pad: pad_of(w),
            });
        }
        out
    }

    /// Windows of several documents (lengths in tokens), in document order.
    pub fn split_all(&self, lens: &[usize]) -> Vec<Window> {
        lens.iter()
            .enumerate()
            .flat_map(|(d, &l)| self.split(d, l))
            .collect()
    }

    /// The windows of tokenized documents and each window's encoder input.
    pub fn split_inputs(&self, docs: &[Vec<u32>]) -> (Vec<Window>, Vec<Vec<u32>>) {
        let lens: Vec<usize> = docs.iter().map(Vec::len).collect();
        let windows = self.split_all(&lens);
        let inputs = windows
            .iter()
            .map(|w| w.input(&docs[w.doc], self.pad_id))
            .collect();
        (windows, inputs)
    }
}

/// One window of one document: text tokens `start..start + tokens` of document
/// `doc`, followed by `pad` pad ids at the encoder. Its decoded output contributes
/// tokens `skip..` (the first `skip` repeat the previous window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub doc: usize,
    pub start: usize,
    pub tokens: usize,
    pub skip: usize,
    pub pad: usize,
}

impl Window {
    /// The encoder's text ids for this window.
    pub fn input(&self, doc_ids: &[u32], pad_id: u32) -> Vec<u32> {
        let mut v = doc_ids[self.start..self.start + self.tokens].to_vec();
        v.extend(std::iter::repeat_n(pad_id, self.pad));
        v
    }

    /// Tokens to generate for this window. A padded window's output is cut at its
    /// own length (what follows reconstructs the padding); a full window gets its
    /// length plus a margin for a model that paraphrases, unless `limit` is given.
    pub fn max_new_tokens(&self, limit: Option<usize>) -> usize {
        let own = if self.pad > 0 {
            self.tokens
        } else {
            self.tokens + self.tokens / 4 + 8
        };
        limit.map_or(own, |l| l.min(own).max(1))
    }

    /// The part of this window's generated ids that belongs to the document.
    pub fn keep<'a>(&self, generated: &'a [u32]) -> &'a [u32] {
        let end = if self.pad > 0 {
            self.tokens.min(generated.len())
        } else {
            generated.len()
        };
        &generated[self.skip.min(end)..end]
    }
}

/// How a window's decoding ended, for reports: nothing is truncated silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowEnd {
    /// The model produced a stop token.
    Stop,
    /// A padded window, cut at its own length by design.
    Cut,
    /// Ran to its token limit without stopping: the output may be truncated.
    Limit,
    /// The decoder's context filled up.
    Context,
}

/// One window's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReport {
    #[serde(flatten)]
    pub window: Window,
    /// Tokens generated (stop token excluded) and kept after skip/cut.
    pub generated: usize,
    pub kept: usize,
    pub end: WindowEnd,
    /// Stopped before giving back as many tokens as the window holds.
    pub short: bool,
}

/// Ends each row at its own window's limit: a batch decodes to the largest limit,
/// and a row's first k tokens do not depend on the other rows, so cutting after
/// the fact equals decoding each row with its own limit.
pub fn apply_limits(windows: &[Window], gens: &mut [Generated], limit: Option<usize>) {
    for (w, g) in windows.iter().zip(gens.iter_mut()) {
        let max = w.max_new_tokens(limit);
        if g.ids.len() > max {
            g.ids.truncate(max);
            g.finish = FinishReason::Length;
        }
    }
}

/// Joins decoded windows into each document's ids (windows in document order, as
/// [`WindowPlan::split_all`] makes them) and reports every window.
pub fn join(
    windows: &[Window],
    gens: &[Generated],
    n_docs: usize,
) -> Result<(Vec<Vec<u32>>, Vec<WindowReport>)> {
    if windows.len() != gens.len() {
        return Err(Error::Input(format!(
            "{} windows but {} decoded outputs",
            windows.len(),
            gens.len()
        )));
    }
    let mut docs = vec![Vec::new(); n_docs];
    let mut reports = Vec::with_capacity(windows.len());
    for (w, g) in windows.iter().zip(gens) {
        let out = docs
            .get_mut(w.doc)
            .ok_or_else(|| Error::Input(format!("window of document {} of {n_docs}", w.doc)))?;
        let kept = w.keep(&g.ids);
        out.extend_from_slice(kept);
        let end = match g.finish {
            FinishReason::Stop => WindowEnd::Stop,
            FinishReason::Context => WindowEnd::Context,
            FinishReason::Length if w.pad > 0 && g.ids.len() >= w.tokens => WindowEnd::Cut,
            FinishReason::Length => WindowEnd::Limit,
        };
        reports.push(WindowReport {
            window: *w,
            generated: g.ids.len(),
            kept: kept.len(),
            end,
            short: g.ids.len() < w.tokens,
        });
    }
    Ok((docs, reports))
}

/// A whole document's finish: `length` if any window ran to its limit (its output
/// may be truncated), `context` if any filled the decoder, else `stop`.
pub fn document_finish(reports: &[WindowReport]) -> FinishReason {
    if reports.iter().any(|r| r.end == WindowEnd::Limit) {
        FinishReason::Length
    } else if reports.iter().any(|r| r.end == WindowEnd::Context) {
        FinishReason::Context
    } else {
        FinishReason::Stop
    }
}

/// Windows decoded per batch by [`decode_windows`]: bounds the KV cache of one
/// decode (rows x (prompt + window)) however long the documents are.
pub const DECODE_BATCH: usize = 64;

/// The one loop every back-end uses to turn windows back into documents: decodes
/// windows `DECODE_BATCH` at a time through `decode(range, cfg)` (the range indexes
/// `windows`; `cfg` is `cfg` with `max_new_tokens` set to the largest limit in the
/// range), cuts each row at its own limit and joins them into each document's ids.
pub fn decode_windows<E: From<Error>>(
    windows: &[Window],
    n_docs: usize,
    cfg: &GenerationConfig,
    limit: Option<usize>,
    mut decode: impl FnMut(
        std::ops::Range<usize>,
        &GenerationConfig,
    ) -> std::result::Result<Vec<Generated>, E>,
) -> std::result::Result<(Vec<Vec<u32>>, Vec<WindowReport>), E> {
    let mut gens = Vec::with_capacity(windows.len());
    let mut batch_cfg = cfg.clone();
    for start in (0..windows.len()).step_by(DECODE_BATCH) {
        let range = start..(start + DECODE_BATCH).min(windows.len());
        batch_cfg.max_new_tokens = windows[range.clone()]
            .iter()
            .map(|w| w.max_new_tokens(limit))
            .max()
            .unwrap_or(1);
        let mut part = decode(range.clone(), &batch_cfg)?;
        apply_limits(&windows[range], &mut part, limit);
        gens.extend(part);
    }
    Ok(join(windows, &gens, n_docs)?)
}

#[cfg(test)]
mod tests;
