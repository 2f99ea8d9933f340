//! How many documents one encoder run takes: as many as fit a memory budget for the
//! run's activations, estimated from the encoder's shapes, up to a count cap.
//!
//! The estimate counts what one layer holds at once per position (the residual
//! stream, its normed copy, q/k/v, the attention output and the attention kernel's
//! own rotated copies of q/k: 8 x hidden; the MLP's gate, up, activation and product:
//! 4 x intermediate) in the export dtype, plus, for attention built from standard ops,
//! the f32 `[heads, L, L]` scores three times over (scores, masked scores,
//! probabilities: ONNX Runtime frees each after its consumer, but a softmax's input
//! and output coexist, and so do the masked add's). A fused attention op
//! (GroupQueryAttention's flash path) keeps only tiles of the scores.
//!
//! Measured at the Qwen2.5-0.5B shape, fp32, one 3,970-token document (anonymous
//! memory the run adds: `examples/encoder_memory.rs`, BENCHMARKS.md): 367 MiB with
//! the fused attention, which this estimate covers (407 MiB with 32 latents); 2,035
//! MiB with standard ops, which it overstates (2.7 GB; such a document runs alone
//! either way).

use c3_core::{ExportManifest, Qwen2Config};

/// The encoder's per-document activation cost.
#[derive(Debug, Clone)]
pub(crate) struct EncoderCost {
    hidden: u64,
    intermediate: u64,
    heads: u64,
    /// Text positions are followed by `<img>` and the N latent queries.
    extra_positions: u64,
    elem: u64,
    fused_attention: bool,
}

impl EncoderCost {
    /// From the manifest's encoder config; `None` if it does not parse (then the
    /// count cap alone decides).
    pub(crate) fn new(m: &ExportManifest) -> Option<Self> {
        let enc: Qwen2Config = serde_json::from_value(m.config.llm1.clone()).ok()?;
        Some(EncoderCost {
            hidden: enc.hidden_size as u64,
            intermediate: enc.intermediate_size as u64,
            heads: enc.num_attention_heads as u64,
            extra_positions: m.n_latents as u64 + 1,
            elem: m.dtype.size() as u64,
            fused_attention: m
                .models
                .encoder
                .op_types
                .iter()
                .any(|op| op.ends_with("GroupQueryAttention")),
        })
    }

    /// Estimated activation bytes of one document padded to `len` text tokens.
    pub(crate) fn bytes(&self, len: usize) -> u64 {
        // Saturating: the shapes come from the manifest, so no size can overflow
        // into a small estimate (a saturated one runs the document alone).
        let l = (len as u64).saturating_add(self.extra_positions);
        let per_position = (self.hidden.saturating_mul(8))
            .saturating_add(self.intermediate.saturating_mul(4))
            .saturating_mul(self.elem);
        let linear = l.saturating_mul(per_position);
        let scores = match self.fused_attention {
            true => 0,
            false => (3 * 4 * self.heads).saturating_mul(l).saturating_mul(l),
        };
        linear.saturating_add(scores)
    }
}

/// Splits documents, already sorted by length (shortest first), into runs: each as
/// long as `count` documents padded to its longest stay within `budget` bytes, at
/// most `cap` documents, at least one.
pub(crate) fn plan(
    lens: &[usize],
    cost: Option<&EncoderCost>,
    budget: u64,
    cap: usize,
) -> Vec<usize> {
    let cap = cap.max(1);
    let mut sizes = Vec::new();
    let mut start = 0;
    while start < lens.len() {
        let mut n = 1;
        while start + n < lens.len() && n < cap {
            let longest = lens[start + n];
            let fits =
                cost.is_none_or(|c| (n as u64 + 1).saturating_mul(c.bytes(longest)) <= budget);
            if !fits {
                break;
            }
            n += 1;
        }
        sizes.push(n);
        start += n;
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(fused: bool) -> EncoderCost {
        // Qwen2.5-0.5B's encoder shapes, fp32, 32 latents.
        EncoderCost {
            hidden: 896,
            intermediate: 4864,
            heads: 14,
            extra_positions: 33,
            elem: 4,
            fused_attention: fused,
        }
    }

    #[test]
    fn long_documents_run_alone_when_scores_are_materialised() {
        let c = cost(false);
        // 3 x 14 x 4033^2 x 4 bytes of scores alone: ~2.7 GB.
        assert!(c.bytes(4000) > 2_700_000_000);
        assert_eq!(plan(&[4000, 4000, 4000], Some(&c), 1 << 30, 16), [1, 1, 1]);
    }

    #[test]
    fn the_budget_sets_the_batch() {
        let c = cost(true);
        let per = c.bytes(4000);
        assert_eq!(plan(&[4000; 7], Some(&c), 3 * per, 16), [3, 3, 1]);
        // Short documents fill the count cap.
        assert_eq!(plan(&[64; 20], Some(&c), 1 << 30, 16), [16, 4]);
        // Sorted input: a long document closes a run of short ones.
        assert_eq!(
            plan(&[64, 64, 4000, 4000], Some(&c), per + 1, 16),
            [2, 1, 1]
        );
        // Without a cost model, only the cap.
        assert_eq!(plan(&[4000; 3], None, 0, 2), [2, 1]);
    }
}
