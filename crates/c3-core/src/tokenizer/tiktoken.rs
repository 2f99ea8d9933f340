//! The release's `qwen.tiktoken`: byte-level BPE where a token's rank is both its
//! id and its merge priority, plus the special tokens of spec §4 from id 151643.
//!
//! Merging uses a heap over adjacent pairs, O(n log n) per pre-token, so hostile
//! input (a megabyte of one letter) cannot make encoding quadratic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use base64::Engine;
use fancy_regex::Regex;
use rustc_hash::FxHashMap;
use unicode_normalization::UnicodeNormalization;

use super::SpecialTokens;
use crate::error::{Error, Result};

/// Pre-tokenizer regex of Qwen (spec §4).
pub const QWEN_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Special tokens in id order from the first id after the ranks (spec §4).
fn special_names() -> Vec<String> {
    let mut v: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    v.extend((0..=204).map(|i| format!("<|extra_{i}|>")));
    for s in [
        "<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>",
    ] {
        v.push(s.into());
    }
    v
}

/// Qwen's tiktoken BPE with the C3 special tokens.
pub struct TiktokenBpe {
    ranks: FxHashMap<Vec<u8>, u32>,
    /// id -> bytes, ordinary tokens then specials.
    tokens: Vec<Vec<u8>>,
    n_ordinary: usize,
    regex: Regex,
}

impl TiktokenBpe {
    /// Parses `base64(token) rank` lines; ranks must be exactly 0..n.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |line: usize, msg: &str| Error::Tokenizer {
            path: path.into(),
            msg: format!("line {line}: {msg}"),
        };
        let mut tokens: Vec<Vec<u8>> = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let (b64, rank) = line
                .split_once(' ')
                .ok_or_else(|| bad(i + 1, "expected `base64 rank`"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| bad(i + 1, "invalid base64"))?;
            let rank: usize = rank
                .trim()
                .parse()
                .map_err(|_| bad(i + 1, "invalid rank"))?;
            if rank != tokens.len() {
                return Err(bad(i + 1, "ranks must be consecutive from 0"));
            }
            tokens.push(bytes);
        }
        Self::from_tokens(tokens).map_err(|msg| Error::Tokenizer {
            path: path.into(),
            msg,
        })
    }

    fn from_tokens(mut tokens: Vec<Vec<u8>>) -> std::result::Result<Self, String> {
        let n_ordinary = tokens.len();
        let ranks: FxHashMap<Vec<u8>, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        for b in 0..=255u8 {
            if !ranks.contains_key(&vec![b]) {
                return Err(format!(
                    "byte {b:#04x} has no token: not a byte-level vocabulary"
                ));
            }
        }
        tokens.extend(special_names().into_iter().map(String::into_bytes));
        let regex = Regex::new(QWEN_PATTERN).map_err(|e| e.to_string())?;
        Ok(TiktokenBpe {
            ranks,
            tokens,
            n_ordinary,
            regex,
        })
    }

    /// Ids of the specials the cascade uses.
    pub fn specials(&self) -> SpecialTokens {
        let id = |k: usize| (self.n_ordinary + k) as u32;
        let extra = 3 + 205;
        SpecialTokens {
            endoftext: id(0),
            im_start: id(1),
            im_end: id(2),
            img_start: id(extra + 6),
            img_end: id(extra + 7),
            img_pad: id(extra + 8),
        }
    }

    /// Ordinary tokens plus specials.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// NFC-normalises, splits with the Qwen regex, and BPE-encodes each piece.
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let text: String = text.nfc().collect();
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut pos = 0;
        while pos < text.len() {
            // The pattern's last branch `\s+` and its letter/number classes cover every
            // character, so a match always exists; a regex runtime error (backtrack
            // limit) falls back to encoding the rest byte-pair-wise as one piece.
            let m = match self.regex.find_from_pos(&text, pos) {
                Ok(Some(m)) if m.start() == pos && m.end() > pos => m.end(),
                _ => text.len(),
            };
            self.encode_piece(&text.as_bytes()[pos..m], &mut out);
            pos = m;
        }
        out
    }

    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if let Some(&r) = self.ranks.get(piece) {
            out.push(r);
            return;
        }
        let n = piece.len();
        // Node i covers piece[i..end[i]]; nodes only grow rightwards, so i stays its start.
        let mut end: Vec<usize> = (1..=n).collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let rank = |a: usize, b: usize| self.ranks.get(&piece[a..b]).copied();
        for i in 0..n.saturating_sub(1) {
            if let Some(r) = rank(i, i + 2) {
                heap.push(Reverse((r, i, i + 2)));
            }
        }
        while let Some(Reverse((_, i, e))) = heap.pop() {
            let nx = next[i];
            // Stale entry: a side of this pair has merged since it was pushed.
            if !alive[i] || nx >= n || end[nx] != e {
                continue;
            }
            end[i] = e;
            alive[nx] = false;
            next[i] = next[nx];
            if next[i] < n {
                prev[next[i]] = i;
            }
            let p = prev[i];
            if p < n
                && let Some(r) = rank(p, end[i])
            {
                heap.push(Reverse((r, p, end[i])));
            }
            if next[i] < n
                && let Some(r) = rank(i, end[next[i]])
            {
                heap.push(Reverse((r, i, end[next[i]])));
            }
        }
        let mut i = 0;
        while i < n {
            // Every node is a byte sequence built from ranked merges, hence ranked.
            out.push(self.ranks[&piece[i..end[i]]]);
            i = next[i];
        }
    }

    /// Concatenates token bytes (specials as their names) and decodes UTF-8 lossily:
    /// a generation may stop inside a multi-byte character.
    pub fn decode(&self, ids: &[u32]) -> std::result::Result<String, String> {
        let mut bytes = Vec::new();
        for &id in ids {
            let t = self.tokens.get(id as usize).ok_or_else(|| {
                format!(
                    "token id {id} is outside the vocabulary ({})",
                    self.tokens.len()
                )
            })?;
            bytes.extend_from_slice(t);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: all bytes, then merges "ab", "abc", "bc".
    fn toy() -> TiktokenBpe {
        let mut t: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        t.push(b"ab".to_vec());
        t.push(b"abc".to_vec());
        t.push(b"bc".to_vec());
        t.push(b"aa".to_vec());
        TiktokenBpe::from_tokens(t).unwrap()
    }

    #[test]
    fn merges_by_rank_leftmost_first() {
        let bpe = toy();
        // "abc": "ab" (256) beats "bc" (258), then "ab"+"c" -> "abc" (257).
        assert_eq!(bpe.encode_ordinary("abc"), vec![257]);
        // "aaa": two "aa" candidates of equal rank, the leftmost merges.
        assert_eq!(bpe.encode_ordinary("aaa"), vec![259, b'a' as u32]);
        assert_eq!(bpe.encode_ordinary("xbc"), vec![b'x' as u32, 258]);
    }

    #[test]
    fn specials_in_text_stay_text() {
        let bpe = toy();
        let ids = bpe.encode_ordinary("<img>");
        assert!(ids.iter().all(|&i| (i as usize) < 260), "{ids:?}");
        assert_eq!(bpe.decode(&ids).unwrap(), "<img>");
        assert_eq!(bpe.specials().img_pad as usize, bpe.vocab_size() - 1);
    }

    #[test]
    fn long_hostile_piece_is_fast() {
        let bpe = toy();
        let s = "a".repeat(200_000);
        let ids = bpe.encode_ordinary(&s);
        assert_eq!(ids.len(), 100_000);
    }
}
