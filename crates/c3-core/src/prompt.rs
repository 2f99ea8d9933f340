//! The token layouts of spec §2: the encoder's input (text, `<img>`, N query slots)
//! and the decoder's prompt with its N latent slots.

use crate::error::{Error, Result};
use crate::tokenizer::{C3Tokenizer, SpecialTokens};

/// The reference system prompt.
pub const SYSTEM_PROMPT: &str =
    "You should follow the instructions carefully and explain your answers in detail.";
/// The reference reconstruction task (note the trailing space).
pub const REPEAT_TASK: &str = "Repeat the text: ";

/// The text parts of the decoder prompt; the reference's by default.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PromptTemplate {
    pub system: String,
    pub task: String,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        PromptTemplate {
            system: SYSTEM_PROMPT.into(),
            task: REPEAT_TASK.into(),
        }
    }
}

/// The rendered template around its two text parts (`render`, `parse`).
const HEAD: &str = "<|im_start|>system\n";
const MIDDLE: &str = "<|im_end|><|im_start|>user\n<img>{latents}</img>\n";
const TAIL: &str = "<|im_end|><|im_start|>assistant\n";

impl PromptTemplate {
    /// The prompt as a string, with `{latents}` where the N slots go (for manifests).
    pub fn render(&self) -> String {
        format!("{HEAD}{}{MIDDLE}{}{TAIL}", self.system, self.task)
    }

    /// The template a manifest records ([`Self::render`]'s output): how an export
    /// tells the runtime the prompt its model was trained with.
    pub fn parse(rendered: &str) -> Result<Self> {
        let parts = rendered
            .strip_prefix(HEAD)
            .and_then(|r| r.strip_suffix(TAIL))
            .and_then(|r| r.split_once(MIDDLE));
        let Some((system, task)) = parts else {
            return Err(Error::Input(format!(
                "prompt template {rendered:?} is not of the form {:?}",
                Self::default().render()
            )));
        };
        Ok(PromptTemplate {
            system: system.into(),
            task: task.into(),
        })
    }

    /// This template with another task after the latents (a request's own prompt,
    /// for a model trained to answer it); the system part stays.
    pub fn with_task(&self, task: &str) -> Result<Self> {
        if task.trim().is_empty() {
            return Err(Error::Input("the prompt is empty".into()));
        }
        Ok(PromptTemplate {
            system: self.system.clone(),
            task: task.into(),
        })
    }
}

/// The decoder prompt ids and where the latent slots start.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderPrompt {
    pub ids: Vec<u32>,
    /// Index of the first `<imgpad>`; slots are `latent_start..latent_start + n`.
    pub latent_start: usize,
    pub n_latents: usize,
}

impl DecoderPrompt {
    /// Builds the prompt of spec §2 for N latents. Text parts are tokenized
    /// separately between the specials, exactly as a tokenizer that splits on
    /// special tokens first would do with the full prompt string.
    pub fn build(tok: &C3Tokenizer, n: usize, template: &PromptTemplate) -> Result<Self> {
        let sp = tok.specials();
        let mut ids = vec![sp.im_start];
        ids.extend(tok.encode(&format!("system\n{}", template.system))?);
        ids.extend([sp.im_end, sp.im_start]);
        ids.extend(tok.encode("user\n")?);
        ids.push(sp.img_start);
        let latent_start = ids.len();
        ids.extend(std::iter::repeat_n(sp.img_pad, n));
        ids.push(sp.img_end);
        ids.extend(tok.encode(&format!("\n{}", template.task))?);
        ids.extend([sp.im_end, sp.im_start]);
        ids.extend(tok.encode("assistant\n")?);
        Ok(DecoderPrompt {
            ids,
            latent_start,
            n_latents: n,
        })
    }
}

/// Encoder input for one document: text ids, `<img>`, N `<imgpad>` slots whose
/// embeddings the model replaces with Q. The closing `</img>` is left out: attention
/// is causal, so it cannot change the latents, and leaving it out puts the N query
/// slots last, where batched (left-padded) extraction is a plain slice.
pub fn encoder_input(text_ids: &[u32], n: usize, sp: &SpecialTokens) -> Vec<u32> {
    let mut ids = Vec::with_capacity(text_ids.len() + n + 1);
    ids.extend_from_slice(text_ids);
    ids.push(sp.img_start);
    ids.extend(std::iter::repeat_n(sp.img_pad, n));
    ids
}

/// Tokenizes a document, refusing empty text. Any length: documents longer than
/// the model's window are windowed (crate::window), never truncated.
pub fn document_ids(tok: &C3Tokenizer, text: &str) -> Result<Vec<u32>> {
    if text.trim().is_empty() {
        return Err(Error::Input("the text is empty".into()));
    }
    tok.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_template_parses_back() {
        let t = PromptTemplate::default();
        assert_eq!(PromptTemplate::parse(&t.render()).unwrap(), t);
        let q = t.with_task("Summarize: ").unwrap();
        assert_eq!(PromptTemplate::parse(&q.render()).unwrap(), q);
        assert_eq!(q.system, SYSTEM_PROMPT);
        assert!(PromptTemplate::parse("Repeat: {latents}").is_err());
        assert!(t.with_task("  ").is_err());
    }
}
