//! A byte-level `tokenizer.json` with no merges: id = byte value, then the C3
//! special tokens. It is what `c3 init --preset tiny` ships, so a random tiny
//! checkpoint is usable end to end without any trained vocabulary.

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::{ENDOFTEXT, IM_END, IM_START, IMG_END, IMG_PAD, IMG_START};
use crate::error::{Error, Result};

/// The special tokens in the order the tiny vocabulary assigns them (ids 256..).
pub const BYTE_LEVEL_SPECIALS: [&str; 6] =
    [ENDOFTEXT, IM_START, IM_END, IMG_START, IMG_END, IMG_PAD];

/// Writes the byte-level tokenizer to `path`.
pub fn write_byte_level_tokenizer(path: &Path) -> Result<()> {
    let err = |e: String| Error::Tokenizer {
        path: path.into(),
        msg: e,
    };
    let vocab: tokenizers::models::bpe::Vocab = ByteLevel::alphabet()
        .into_iter()
        .map(|c| {
            let s = c.to_string();
            // The alphabet maps byte b to one char; recover b to make id = byte value.
            let b = byte_of(c);
            (s, b as u32)
        })
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, vec![])
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, false)));
    tok.with_decoder(Some(ByteLevel::default()));
    let specials: Vec<AddedToken> = BYTE_LEVEL_SPECIALS
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    tok.add_special_tokens(specials)
        .map_err(|e| err(e.to_string()))?;
    tok.save(path, true).map_err(|e| err(e.to_string()))
}

/// Inverse of GPT-2's bytes-to-unicode table.
fn byte_of(c: char) -> u8 {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let cp = c as u32;
    if printable(cp) {
        return cp as u8;
    }
    // Non-printable bytes were shifted to 256 + their rank among non-printables.
    let k = cp - 256;
    (0..=255u32)
        .filter(|b| !printable(*b))
        .nth(k as usize)
        .unwrap_or(0) as u8
}
