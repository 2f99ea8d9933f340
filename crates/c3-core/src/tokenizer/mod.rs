//! Tokenizers of the C3 contract (spec §4).
//!
//! Two file formats give the same kind of tokenizer: the release's `qwen.tiktoken`
//! (BPE ranks; the special tokens are fixed by the spec from id 151643) and a HF
//! `tokenizer.json` (our small project-trained BPEs, which reserve the same
//! special-token names). Either way, user text is encoded as *ordinary* text:
//! a `<img>` typed by a user stays the characters `<`, `img`, `>`, never the
//! special id (the reference implementation breaks on exactly that).

mod bytelevel;
mod hf;
mod tiktoken;
mod train;

pub use bytelevel::write_byte_level_tokenizer;
pub use tiktoken::{QWEN_PATTERN, TiktokenBpe};
pub use train::train_bpe;

use std::path::{Path, PathBuf};

use crate::config::C3Config;
use crate::error::{Error, Result};

/// Special-token names, in the spec's order of ids they play a role for.
pub const ENDOFTEXT: &str = "<|endoftext|>";
pub const IM_START: &str = "<|im_start|>";
pub const IM_END: &str = "<|im_end|>";
pub const IMG_START: &str = "<img>";
pub const IMG_END: &str = "</img>";
pub const IMG_PAD: &str = "<imgpad>";

/// The file names a checkpoint folder may carry its tokenizer in, by priority.
pub const TOKENIZER_JSON: &str = "tokenizer.json";
pub const QWEN_TIKTOKEN: &str = "qwen.tiktoken";

/// Ids of the special tokens the cascade uses (also the export manifest's
/// `special_tokens`, which the runtime checks against its tokenizer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpecialTokens {
    pub endoftext: u32,
    pub im_start: u32,
    pub im_end: u32,
    pub img_start: u32,
    pub img_end: u32,
    pub img_pad: u32,
}

impl SpecialTokens {
    /// Refuses a tokenizer whose `<img>`/`</img>`/`<imgpad>` ids differ from the config's.
    pub fn check_config(&self, cfg: &C3Config, tokenizer: &Path) -> Result<()> {
        let pairs = [
            (
                "im_start_token",
                IMG_START,
                cfg.c3.im_start_token,
                self.img_start,
            ),
            ("im_end_token", IMG_END, cfg.c3.im_end_token, self.img_end),
            (
                "im_patch_token",
                IMG_PAD,
                cfg.c3.im_patch_token,
                self.img_pad,
            ),
        ];
        for (field, name, want, got) in pairs {
            if want != got {
                return Err(Error::Tokenizer {
                    path: tokenizer.into(),
                    msg: format!("{name} has id {got}, but config.json says {field} = {want}"),
                });
            }
        }
        Ok(())
    }

    /// The ids generation stops on: `<|im_end|>` and `<|endoftext|>` (spec §2).
    pub fn stop_ids(&self) -> Vec<u32> {
        vec![self.im_end, self.endoftext]
    }
}

enum Kind {
    Hf(hf::HfTokenizer),
    Tiktoken(TiktokenBpe),
}

/// A C3 tokenizer: ordinary-text encoding, decoding, and the special ids.
pub struct C3Tokenizer {
    kind: Kind,
    specials: SpecialTokens,
    path: PathBuf,
}

impl C3Tokenizer {
    /// Loads the tokenizer a checkpoint or export folder carries
    /// (`tokenizer.json` first, else `qwen.tiktoken`).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let json = dir.join(TOKENIZER_JSON);
        if json.is_file() {
            return Self::from_tokenizer_json(&json);
        }
        let tk = dir.join(QWEN_TIKTOKEN);
        if tk.is_file() {
            return Self::from_tiktoken(&tk);
        }
        Err(Error::Input(format!(
            "{}: no tokenizer ({TOKENIZER_JSON} or {QWEN_TIKTOKEN})",
            dir.display()
        )))
    }

    /// Loads a tokenizer file by its kind: `*.tiktoken` (the release's format), else a
    /// HF `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        if path.extension().is_some_and(|e| e == "tiktoken") {
            Self::from_tiktoken(path)
        } else {
            Self::from_tokenizer_json(path)
        }
    }

    /// Loads a HF `tokenizer.json` that defines the C3 special-token names.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let hf = hf::HfTokenizer::load(path)?;
        let specials = hf.specials(path)?;
        Ok(C3Tokenizer {
            kind: Kind::Hf(hf),
            specials,
            path: path.into(),
        })
    }

    /// Loads the release's `qwen.tiktoken` with the special tokens of spec §4.
    pub fn from_tiktoken(path: &Path) -> Result<Self> {
        let bpe = TiktokenBpe::load(path)?;
        let specials = bpe.specials();
        Ok(C3Tokenizer {
            kind: Kind::Tiktoken(bpe),
            specials,
            path: path.into(),
        })
    }

    /// Encodes user text as ordinary tokens (special-token strings stay text).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.kind {
            Kind::Hf(t) => t.encode(text, &self.path),
            Kind::Tiktoken(t) => Ok(t.encode_ordinary(text)),
        }
    }

    /// Decodes ids to text; special tokens are rendered as their names. Ids past
    /// the tokenizer's vocabulary (a model's embedding table is often padded beyond
    /// it, and an untrained model may emit them) become U+FFFD, visibly.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let vocab = self.vocab_size() as u32;
        if ids.iter().any(|&i| i >= vocab) {
            let mut out = String::new();
            for run in ids.split_inclusive(|&i| i >= vocab) {
                let (last, body) = run
                    .split_last()
                    .map(|(l, b)| (Some(*l), b))
                    .unwrap_or((None, run));
                match last {
                    Some(l) if l >= vocab => {
                        out += &self.decode_valid(body)?;
                        out.push('\u{fffd}');
                    }
                    _ => out += &self.decode_valid(run)?,
                }
            }
            return Ok(out);
        }
        self.decode_valid(ids)
    }

    fn decode_valid(&self, ids: &[u32]) -> Result<String> {
        match &self.kind {
            Kind::Hf(t) => t.decode(ids, &self.path),
            Kind::Tiktoken(t) => t.decode(ids).map_err(|msg| Error::Tokenizer {
                path: self.path.clone(),
                msg,
            }),
        }
    }

    /// A reconstruction's text: the decoded ids, whitespace-stripped at both ends
    /// (spec §2, as the reference prints its output).
    pub fn decode_text(&self, ids: &[u32]) -> Result<String> {
        Ok(self.decode(ids)?.trim().to_string())
    }

    /// Special-token ids.
    pub fn specials(&self) -> &SpecialTokens {
        &self.specials
    }

    /// Number of ids (ordinary + special).
    pub fn vocab_size(&self) -> usize {
        match &self.kind {
            Kind::Hf(t) => t.vocab_size(),
            Kind::Tiktoken(t) => t.vocab_size(),
        }
    }

    /// `tokenizer.json` or `qwen.tiktoken`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Hf(_) => "tokenizer.json (HF BPE)",
            Kind::Tiktoken(_) => "qwen.tiktoken (Qwen BPE)",
        }
    }

    /// The file it was loaded from (copied beside exported models).
    pub fn path(&self) -> &Path {
        &self.path
    }
}
