//! The encoder's rows for ONNX Runtime's GroupQueryAttention (`--target ort`).
//!
//! The encoder's contract is left padding (export/CONTRACT.md), with positions
//! counted from each row's first real token. GroupQueryAttention's prompt mode reads
//! each row's first `seqlens_k + 1` positions as real and numbers them from 0: right
//! padding. So each row is rotated left by its pad count before the layers (its real
//! tokens, `<img>` and the latent queries first, the pad embeddings after, where no
//! real query attends to them), and the N latent rows are read back from where each
//! row's real length puts them. Every real position then sees exactly the keys and
//! rotary position it has in the standard-op graph.

use c3_core::Qwen2Config;
use c3_onnx::{ElemType, GraphBuilder, Value};

use crate::error::Result;
use crate::qwen2::{self, GqaInputs};

/// Rows rotated to right padding, with what GroupQueryAttention needs to read them.
pub struct RightPadded {
    /// `[B, T, D]`: each row's real positions first.
    pub x: Value,
    pub gqa: GqaInputs,
    /// `[B, 1]` int64: real positions per row.
    lens: Value,
}

impl RightPadded {
    /// `x` `[B, T, D]` left-padded, `mask` `[B, T]` int64 (1 = real position).
    pub fn new(
        g: &mut GraphBuilder,
        cfg: &Qwen2Config,
        x: &Value,
        mask: &Value,
        dtype: ElemType,
    ) -> Result<Self> {
        let (x, seqlens_k, total_len, lens) = g.scoped("model.right_pad", |g| -> Result<_> {
            let axis1 = g.const_i64s(&[1])?;
            let lens = g
                .node("ReduceSum", &[mask, &axis1])
                .attr("keepdims", 1i64)
                .output()?;
            let shape = g.shape_of(mask)?;
            let t = g.gather(&shape, &axis1, 0)?; // [1]
            let pad = g.sub(&t, &lens)?; // [B, 1]
            let (zero, one) = (g.const_i64(0)?, g.const_i64(1)?);
            let t0 = g.squeeze(&t, &[0])?;
            let j = g.range(&zero, &t0, &one)?; // [T]
            let j = g.unsqueeze(&j, &[0])?; // [1, T]
            // Row b's position j reads position (j + pad_b) mod T: a left rotation.
            let src = g.add(&j, &pad)?;
            let src = g.node("Mod", &[&src, &t]).output()?;
            let src = g.unsqueeze(&src, &[2])?; // [B, T, 1]
            let rotated = g
                .node("GatherND", &[x, &src])
                .attr("batch_dims", 1i64)
                .output()?;
            let last = g.sub(&lens, &one)?;
            let last = g.squeeze(&last, &[1])?;
            let seqlens_k = g.cast(&last, ElemType::I32)?;
            let total_len = g.cast(&t0, ElemType::I32)?;
            Ok((rotated, seqlens_k, total_len, lens))
        })?;
        let (cos_cache, sin_cache) = g.scoped("model", |g| qwen2::rope_caches(g, cfg, dtype))?;
        Ok(RightPadded {
            x,
            gqa: GqaInputs {
                seqlens_k,
                total_len,
                cos_cache,
                sin_cache,
            },
            lens,
        })
    }

    /// Each row's last `n` real positions of `h` `[B, T, D]`: `[B, n, D]`.
    pub fn last(&self, g: &mut GraphBuilder, h: &Value, n: i64) -> Result<Value> {
        g.scoped("model.right_pad", |g| -> Result<Value> {
            let first = g.const_i64s(&[n])?;
            let start = g.sub(&self.lens, &first)?; // [B, 1]
            let (zero, step, n) = (g.const_i64(0)?, g.const_i64(1)?, g.const_i64(n)?);
            let i = g.range(&zero, &n, &step)?;
            let i = g.unsqueeze(&i, &[0])?; // [1, n]
            let at = g.add(&start, &i)?;
            let at = g.unsqueeze(&at, &[2])?; // [B, n, 1]
            Ok(g.node("GatherND", &[h, &at])
                .attr("batch_dims", 1i64)
                .output()?)
        })
    }
}
