//! HF `tokenizer.json` through the `tokenizers` crate, encoding without the
//! added-token split: the added vocabulary is what would turn a `<img>` in user
//! text into the special id, so we run normalizer, pre-tokenizer and model only.

use std::path::Path;

use tokenizers::{Model, Normalizer, PreTokenizer};
use tokenizers::{OffsetType, PreTokenizedString, Tokenizer};

use super::{ENDOFTEXT, IM_END, IM_START, IMG_END, IMG_PAD, IMG_START, SpecialTokens};
use crate::error::{Error, Result};

pub(super) struct HfTokenizer(Tokenizer);

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer {
        path: path.into(),
        msg: e.to_string(),
    }
}

impl HfTokenizer {
    pub fn load(path: &Path) -> Result<Self> {
        Tokenizer::from_file(path)
            .map(HfTokenizer)
            .map_err(|e| err(path, e))
    }

    pub fn specials(&self, path: &Path) -> Result<SpecialTokens> {
        let id = |name: &str| {
            self.0.token_to_id(name).ok_or_else(|| {
                err(
                    path,
                    format!("the special token {name} is not defined (C3 needs it)"),
                )
            })
        };
        Ok(SpecialTokens {
            endoftext: id(ENDOFTEXT)?,
            im_start: id(IM_START)?,
            im_end: id(IM_END)?,
            img_start: id(IMG_START)?,
            img_end: id(IMG_END)?,
            img_pad: id(IMG_PAD)?,
        })
    }

    pub fn encode(&self, text: &str, path: &Path) -> Result<Vec<u32>> {
        let mut pre = PreTokenizedString::from(text);
        if let Some(n) = self.0.get_normalizer() {
            pre.normalize(|s| n.normalize(s))
                .map_err(|e| err(path, e))?;
        }
        if let Some(p) = self.0.get_pre_tokenizer() {
            p.pre_tokenize(&mut pre).map_err(|e| err(path, e))?;
        }
        let model = self.0.get_model();
        pre.tokenize(|s| model.tokenize(s.get()))
            .map_err(|e| err(path, e))?;
        let enc = pre
            .into_encoding(None, 0, OffsetType::None)
            .map_err(|e| err(path, e))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], path: &Path) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(err(
                path,
                format!("token id {bad} is outside the vocabulary ({vocab})"),
            ));
        }
        self.0.decode(ids, false).map_err(|e| err(path, e))
    }

    pub fn vocab_size(&self) -> usize {
        self.0.get_vocab_size(true)
    }
}
