//! C3 training samples (spec §2/§5) batched for tch: the encoder's left-padded
//! ids (text, `<img>`, N query slots) and the decoder's answer tokens, right
//! padded, with labels on the answer and its closing `<|im_end|>` only.

use c3_core::presets::SplitMix64;
use c3_core::prompt::encoder_input;
use c3_core::{DecoderPrompt, SpecialTokens};
use c3_torch::EncoderBatch;
use c3_torch::tch::{Device, Tensor};

use crate::error::Result;

/// Label value ignored by the loss.
pub const IGNORE: i64 = -100;

/// One micro-batch.
pub struct Batch {
    pub encoder: EncoderBatch,
    /// Decoder input ids after the prompt: `[B, A]` (answer tokens, word-dropped, padded).
    pub answer_inputs: Tensor,
    /// Targets for prompt position L-1 .. L+A-2: `[B, A]`, IGNORE on padding.
    pub labels: Tensor,
    /// Supervised tokens in this batch (answer + `<|im_end|>`).
    pub n_label_tokens: usize,
}

/// Builds a batch. The decoder sees `prompt ++ answer`, where answer = passage
/// ids ++ `<|im_end|>`; the logits at the prompt's last position and at answer
/// positions 0..A-2 predict answer tokens 0..A-1, so the input answer drops its
/// final token. Word dropout replaces input tokens (never labels) with the pad id.
pub fn make_batch(
    passages: &[&[u32]],
    prompt: &DecoderPrompt,
    sp: &SpecialTokens,
    word_dropout: f64,
    rng: &mut SplitMix64,
    device: Device,
) -> Result<Batch> {
    let n = prompt.n_latents;
    let seqs: Vec<Vec<u32>> = passages.iter().map(|p| encoder_input(p, n, sp)).collect();
    let encoder = EncoderBatch::new(&seqs, sp.endoftext, device)?;
    let a = passages.iter().map(|p| p.len() + 1).max().unwrap_or(1);
    let b = passages.len();
    let mut inputs = vec![sp.endoftext as i64; b * a];
    let mut labels = vec![IGNORE; b * a];
    let mut n_label_tokens = 0;
    for (r, p) in passages.iter().enumerate() {
        let answer: Vec<u32> = p.iter().copied().chain([sp.im_end]).collect();
        for (j, &t) in answer.iter().enumerate() {
            labels[r * a + j] = t as i64;
            n_label_tokens += 1;
            // Input at answer position j is answer token j-1 (position 0 is the prompt's end).
            if j + 1 < answer.len() {
                let drop = word_dropout > 0.0 && (rng.uniform() as f64) < word_dropout;
                inputs[r * a + j + 1] = if drop { sp.endoftext as i64 } else { t as i64 };
            }
        }
    }
    // Column 0 of `inputs` is never fed (the prompt's last token predicts label 0);
    // the model consumes inputs[:, 1..].
    let shape = [b as i64, a as i64];
    let t = |v: Vec<i64>| Tensor::from_slice(&v).view(shape).to_device(device);
    Ok(Batch {
        encoder,
        answer_inputs: t(inputs),
        labels: t(labels),
        n_label_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use c3_core::C3Tokenizer;

    #[test]
    fn labels_cover_exactly_the_answer_and_im_end() {
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny");
        let tok = C3Tokenizer::from_dir(&dir).unwrap();
        let prompt = DecoderPrompt::build(&tok, 4, &c3_core::PromptTemplate::default()).unwrap();
        let sp = *tok.specials();
        let (p1, p2): (Vec<u32>, Vec<u32>) = (vec![10, 11, 12], vec![20, 21, 22, 23, 24]);
        let b = make_batch(
            &[&p1, &p2],
            &prompt,
            &sp,
            0.0,
            &mut SplitMix64::new(0),
            Device::Cpu,
        )
        .unwrap();
        let labels = Vec::<i64>::try_from(b.labels.flatten(0, -1)).unwrap();
        let im_end = sp.im_end as i64;
        assert_eq!(
            labels,
            vec![
                10, 11, 12, im_end, IGNORE, IGNORE, 20, 21, 22, 23, 24, im_end
            ]
        );
        assert_eq!(b.n_label_tokens, 4 + 6);
        // Inputs: column j+1 holds answer token j (teacher forcing), never the final label.
        let inputs = Vec::<i64>::try_from(b.answer_inputs.flatten(0, -1)).unwrap();
        let pad = sp.endoftext as i64;
        assert_eq!(
            inputs,
            vec![pad, 10, 11, 12, pad, pad, pad, 20, 21, 22, 23, 24]
        );
    }
}
