//! Training a small byte-level BPE `tokenizer.json` for from-scratch models, with
//! Qwen's pre-tokenizer regex and NFC, and the C3 special-token names reserved
//! (ids 0..5), so the result loads as a [`C3Tokenizer`](super::C3Tokenizer).

use std::path::Path;

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, TokenizerBuilder, TokenizerImpl};
use tokenizers::{
    DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
};

use super::QWEN_PATTERN;
use super::bytelevel::BYTE_LEVEL_SPECIALS;
use crate::error::{Error, Result};

type Tok = TokenizerImpl<
    ModelWrapper,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// Trains a BPE of `vocab_size` ids (specials and the 256-byte alphabet included)
/// on `texts` and writes it to `out`.
pub fn train_bpe<I>(texts: I, vocab_size: usize, min_frequency: u64, out: &Path) -> Result<()>
where
    I: Iterator<Item = String> + Send,
{
    let err = |e: String| Error::Tokenizer {
        path: out.into(),
        msg: e,
    };
    let floor = 256 + BYTE_LEVEL_SPECIALS.len();
    if vocab_size < floor {
        return Err(err(format!(
            "vocab size {vocab_size} is below {floor} (bytes + specials)"
        )));
    }
    let split = Split::new(
        SplitPattern::Regex(QWEN_PATTERN.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| err(e.to_string()))?;
    let pre = Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, false, false).into(),
    ]);
    let mut tok: Tok = TokenizerBuilder::new()
        .with_model(BPE::default().into())
        .with_normalizer(Some(NFC.into()))
        .with_pre_tokenizer(Some(pre.into()))
        .with_decoder(Some(ByteLevel::default().into()))
        .with_post_processor(None)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let specials: Vec<AddedToken> = BYTE_LEVEL_SPECIALS
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    let mut trainer: tokenizers::models::TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build()
        .into();
    tok.train(&mut trainer, texts)
        .map_err(|e| err(e.to_string()))?;
    tok.save(out, true).map_err(|e| err(e.to_string()))
}
