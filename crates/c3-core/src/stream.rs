//! Streaming one document's text while its windows decode.
//!
//! A document's windows decode in parallel (as rows of one batch, or rows of
//! different steps), but its text is in window order: tokens of window k are held
//! until every window before k is done. Each window contributes
//! [`Window::keep`] of its generated ids, which is prefix-monotonic (a longer
//! generation keeps a longer prefix), so the kept part of an unfinished window can be
//! released token by token.
//!
//! Released ids become text by incremental detokenisation (the prefix/read offset
//! technique): only the few ids since the last emitted piece are decoded, with the
//! ids before them as context, and a piece is emitted only when it grows the text
//! and does not end in U+FFFD (an incomplete UTF-8 sequence, cut inside a character,
//! decodes to U+FFFD until its last byte arrives). So every piece is whole
//! characters, and decoding never goes back over the whole document per token.
//!
//! The final text is `tokenizer.decode(ids).trim()` (spec §2), so leading
//! whitespace is held until something else arrives and trailing whitespace until
//! more text follows it or the document ends: the pieces joined are exactly the
//! final text.

use crate::error::{Error, Result};
use crate::tokenizer::C3Tokenizer;
use crate::window::Window;

/// The incremental text of one document's windows (see the module docs).
#[derive(Debug, Clone)]
pub struct DocumentStream {
    /// The document's windows, in document order.
    windows: Vec<Window>,
    /// Generated ids of each window so far.
    generated: Vec<Vec<u32>>,
    done: Vec<bool>,
    /// The first window not done: every window before it is fully released.
    current: usize,
    /// Kept ids of `current` already released.
    released_in_current: usize,
    /// The document's ids released so far, in order.
    ids: Vec<u32>,
    /// `ids[prefix_offset..read_offset]` is context already emitted; what follows
    /// `read_offset` is not emitted yet.
    prefix_offset: usize,
    read_offset: usize,
    /// The untrimmed text emitted so far (checked against the whole decode at the end).
    raw: String,
    trim: Trim,
    finished: bool,
}

impl DocumentStream {
    /// A stream over one document's windows, in document order (as
    /// [`crate::WindowPlan::split`] makes them).
    pub fn new(windows: Vec<Window>) -> Self {
        let n = windows.len();
        DocumentStream {
            windows,
            generated: vec![Vec::new(); n],
            done: vec![false; n],
            current: 0,
            released_in_current: 0,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
            raw: String::new(),
            trim: Trim::default(),
            finished: false,
        }
    }

    /// Token `id` was generated for window `window`; returns the text it completes,
    /// if any.
    pub fn token(&mut self, tok: &C3Tokenizer, window: usize, id: u32) -> Result<Option<String>> {
        self.check_open(window)?;
        self.generated[window].push(id);
        if window == self.current {
            self.release(tok)
        } else {
            Ok(None)
        }
    }

    /// Window `window` finished with `generated` (its whole output, of which the
    /// tokens already streamed are a prefix); returns the text this releases.
    pub fn window_done(
        &mut self,
        tok: &C3Tokenizer,
        window: usize,
        generated: &[u32],
    ) -> Result<Option<String>> {
        self.check_open(window)?;
        let seen = &self.generated[window];
        if !generated.starts_with(seen) {
            return Err(Error::Input(format!(
                "window {window} finished with ids that do not continue its streamed tokens"
            )));
        }
        self.generated[window] = generated.to_vec();
        self.done[window] = true;
        if window == self.current {
            self.release(tok)
        } else {
            Ok(None)
        }
    }

    /// Ends the stream once every window is done: returns what is left of the text
    /// (an undecodable tail, held back so far, comes out here as U+FFFD). After this
    /// the pieces joined equal `tok.decode(self.ids())?.trim()`.
    pub fn finish(&mut self, tok: &C3Tokenizer) -> Result<Option<String>> {
        if let Some(w) = self.done.iter().position(|d| !d) {
            return Err(Error::Input(format!(
                "the stream cannot end: window {w} of {} is not done",
                self.windows.len()
            )));
        }
        if self.finished {
            return Ok(None);
        }
        self.finished = true;
        // One decode of the whole document, at the end only: the tail held back and
        // a check that the pieces really are the document's text.
        let full = tok.decode(&self.ids)?;
        let rest = full.strip_prefix(self.raw.as_str()).ok_or_else(|| {
            Error::Input(
                "the streamed text diverged from the document's decoded text (tokenizer not prefix-stable)"
                    .into(),
            )
        })?;
        let piece = self.trim.push(rest);
        self.raw = full;
        Ok(piece)
    }

    /// The document's ids released so far (all of them after the last window is done).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    fn check_open(&self, window: usize) -> Result<()> {
        if window >= self.windows.len() {
            return Err(Error::Input(format!(
                "window {window} of a document of {} windows",
                self.windows.len()
            )));
        }
        if self.done[window] {
            return Err(Error::Input(format!("window {window} is already done")));
        }
        Ok(())
    }

    /// Moves every id that is now in document order into `ids`, then decodes.
    fn release(&mut self, tok: &C3Tokenizer) -> Result<Option<String>> {
        let before = self.ids.len();
        while self.current < self.windows.len() {
            let c = self.current;
            let kept = self.windows[c].keep(&self.generated[c]);
            if kept.len() > self.released_in_current {
                self.ids
                    .extend_from_slice(&kept[self.released_in_current..]);
                self.released_in_current = kept.len();
            }
            if !self.done[c] {
                break;
            }
            // A finished window's ids are in `ids` now; free its buffer.
            self.generated[c] = Vec::new();
            self.current += 1;
            self.released_in_current = 0;
        }
        if self.ids.len() == before {
            return Ok(None);
        }
        self.detokenize(tok)
    }

    /// Text of the ids after `read_offset`, decoded with the emitted ids before them
    /// as context; `None` while it would end inside a character.
    fn detokenize(&mut self, tok: &C3Tokenizer) -> Result<Option<String>> {
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let text = tok.decode(&self.ids[self.prefix_offset..])?;
        if text.len() <= prefix.len()
            || text.ends_with('\u{fffd}')
            || !text.is_char_boundary(prefix.len())
        {
            return Ok(None);
        }
        let new = &text[prefix.len()..];
        self.raw.push_str(new);
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(self.trim.push(new))
    }
}

/// Trims a text that arrives in pieces as `str::trim` trims the whole: leading
/// whitespace is dropped, trailing whitespace held until more text follows.
#[derive(Debug, Clone, Default)]
struct Trim {
    started: bool,
    held: String,
}

impl Trim {
    fn push(&mut self, piece: &str) -> Option<String> {
        let piece = if self.started {
            piece
        } else {
            piece.trim_start()
        };
        let body = piece.trim_end().len();
        if body == 0 {
            if self.started {
                self.held.push_str(piece);
            }
            return None;
        }
        self.started = true;
        let mut out = std::mem::take(&mut self.held);
        out.push_str(&piece[..body]);
        self.held.push_str(&piece[body..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests;
