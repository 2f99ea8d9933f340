//! Qwen2 blocks as ONNX subgraphs: RMSNorm computed in fp32, RoPE (rotate-half)
//! from position ids, grouped-query attention without materialising repeated K/V,
//! SwiGLU MLP. Standard ops for `--target tensorrt`; `--target ort` also uses ONNX
//! Runtime's `SimplifiedLayerNormalization`, packed-QKV `GroupQueryAttention` and
//! (quantized) `MatMulNBits`. Node scopes and initializer names
//! follow the checkpoint keys (`model.layers.3.self_attn.q_proj.weight.T`).
//!
//! Precision: weights, activations and the KV cache are in the export dtype; norms
//! and softmax run in fp32 and are cast back, as the reference does.

use crate::error::Result;
use c3_core::Qwen2Config;
use c3_onnx::{ElemType, GraphBuilder, MS_DOMAIN, Value};

use crate::weights::{Folder, Weights};

/// Most negative f32: the additive mask value of the reference (HF uses dtype min).
pub const MASK_MIN: f32 = f32::MIN;

/// Values shared by every layer of one graph.
pub struct Shared {
    /// RoPE cos/sin `[B, 1, L, head_dim]` in the export dtype.
    pub cos: Value,
    pub sin: Value,
    /// Additive mask `[B, 1, 1, L, T]` f32 (T = past + L): causal and key padding.
    pub mask: Value,
}

/// Casts `x` to `to` unless it already is `to` (fp32 exports need no casts around
/// the fp32 norms and softmax).
fn cast_if(g: &mut GraphBuilder, x: &Value, to: ElemType) -> Result<Value> {
    Ok(if x.elem() == to {
        x.clone()
    } else {
        g.cast(x, to)?
    })
}

/// `Qwen2RMSNorm` at scope `key` (its `.weight`): fp32 statistics, output in dtype.
/// For ONNX Runtime one `SimplifiedLayerNormalization` node (the same formula,
/// statistics in fp32: `stash_type` 1), one kernel instead of eight per norm;
/// standard ops for TensorRT.
pub fn rms_norm(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    key: &str,
    x: &Value,
    eps: f64,
) -> Result<Value> {
    let weight = w.plain(g, folder, &format!("{key}.weight"))?;
    if w.fused_norms {
        return g.scoped(key, |g| -> Result<Value> {
            Ok(g.node("SimplifiedLayerNormalization", &[x, &weight])
                .attr("axis", -1i64)
                .attr("epsilon", eps as f32)
                .attr("stash_type", 1i64)
                .output()?)
        });
    }
    g.scoped(key, |g| -> Result<Value> {
        let xf = cast_if(g, x, ElemType::F32)?;
        let sq = g.mul(&xf, &xf)?;
        let var = g.reduce_mean(&sq, &[-1], true)?;
        let eps = g.scalar(eps as f32)?;
        let var = g.add(&var, &eps)?;
        let rms = g.sqrt(&var)?;
        let inv = g.reciprocal(&rms)?;
        let y = g.mul(&xf, &inv)?;
        let y = cast_if(g, &y, w.elem())?;
        Ok(g.mul(&weight, &y)?)
    })
}

/// The quantization of the Linear at `key`, if it is quantized: the decoder's
/// transformer layers (never the encoder or projector, whose precision the latents
/// hinge on; the LM head is graphs.rs's choice).
fn quantized_here(w: &Weights, folder: Folder, key: &str) -> Option<crate::quantize::QuantSpec> {
    w.quant
        .filter(|_| folder == Folder::Root && key.starts_with("model.layers."))
}

/// `self_attn`'s q, k and v projections of `x` as one `[B, L, (heads + 2 x kv_heads)
/// x head_dim]` value, GroupQueryAttention's packed input: one matmul over the
/// three weights' rows stacked, plus their stacked biases. The stacking is done by
/// `Concat` nodes over the checkpoint's own tensors, which ONNX Runtime folds into
/// constants when it loads the model, so a run does one matmul, not three (a
/// quantized decoder step is ~5% faster; the bytes are identical).
fn packed_qkv(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    key: &str,
    x: &Value,
) -> Result<Value> {
    let keys = ["q_proj", "k_proj", "v_proj"].map(|p| format!("{key}.{p}"));
    let scope = format!("{key}.qkv_proj");
    let y = match quantized_here(w, folder, &keys[0]) {
        Some(spec) => {
            let weights = keys.clone().map(|k| format!("{k}.weight"));
            let weights = weights.each_ref().map(String::as_str);
            crate::quantize::stacked_linear(g, w, folder, &weights, &scope, x, spec)?
        }
        None => {
            let mut wts = Vec::new();
            for k in &keys {
                wts.push(w.transposed(g, folder, &format!("{k}.weight"))?);
            }
            g.scoped(&scope, |g| -> Result<Value> {
                let wt = g.concat(&[&wts[0], &wts[1], &wts[2]], 1)?;
                Ok(g.matmul(x, &wt)?)
            })?
        }
    };
    let mut biases = Vec::new();
    for k in &keys {
        biases.push(w.plain(g, folder, &format!("{k}.bias"))?);
    }
    g.scoped(&scope, |g| -> Result<Value> {
        let b = g.concat(&[&biases[0], &biases[1], &biases[2]], 0)?;
        Ok(g.add(&y, &b)?)
    })
}

/// `nn.Linear` at scope `key`: `x @ W^T (+ b)`.
pub fn linear(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    key: &str,
    x: &Value,
    bias: bool,
) -> Result<Value> {
    if let Some(spec) = quantized_here(w, folder, key) {
        let y = crate::quantize::linear(g, w, folder, &format!("{key}.weight"), x, spec)?;
        if !bias {
            return Ok(y);
        }
        let b = w.plain(g, folder, &format!("{key}.bias"))?;
        return g.scoped(key, |g| Ok(g.add(&y, &b)?));
    }
    let wt = w.transposed(g, folder, &format!("{key}.weight"))?;
    let b = if bias {
        Some(w.plain(g, folder, &format!("{key}.bias"))?)
    } else {
        None
    };
    g.scoped(key, |g| -> Result<Value> {
        let y = g.matmul(x, &wt)?;
        Ok(match b {
            Some(b) => g.add(&y, &b)?,
            None => y,
        })
    })
}

/// cos/sin `[B, 1, L, head_dim]` for `positions` `[B, L]` int64: frequencies in f32
/// (`theta^(-2i/d)`), duplicated halves, cast to the export dtype.
pub fn rope_tables(
    g: &mut GraphBuilder,
    cfg: &Qwen2Config,
    positions: &Value,
    dtype: ElemType,
) -> Result<(Value, Value)> {
    let hd = cfg.head_dim();
    let inv_freq: Vec<f32> = (0..hd / 2)
        .map(|i| {
            let exp = (2 * i) as f32 / hd as f32;
            1.0 / (cfg.rope_theta as f32).powf(exp)
        })
        .collect();
    g.scoped("rotary_emb", |g| -> Result<(Value, Value)> {
        let inv = g.constant(&[(hd / 2) as i64], &inv_freq)?;
        let pos = g.cast(positions, ElemType::F32)?;
        let pos = g.unsqueeze(&pos, &[-1])?;
        let freqs = g.mul(&pos, &inv)?;
        let emb = g.concat(&[&freqs, &freqs], -1)?;
        let emb = g.unsqueeze(&emb, &[1])?;
        let cos = g.cos(&emb)?;
        let sin = g.sin(&emb)?;
        Ok((cast_if(g, &cos, dtype)?, cast_if(g, &sin, dtype)?))
    })
}

/// The f32 additive mask `[B, 1, 1, L, T]` from `attention_mask` `[B, T]` (1 = real
/// key) and the query length of `x` `[B, L, D]`: query i sits at position T - L + i
/// and sees keys j <= T - L + i that are real.
pub fn attention_mask(g: &mut GraphBuilder, key_mask: &Value, x: &Value) -> Result<Value> {
    g.scoped("mask", |g| -> Result<Value> {
        let kshape = g.shape_of(key_mask)?;
        let xshape = g.shape_of(x)?;
        let one_i = g.const_i64s(&[1])?;
        let two_i = g.const_i64s(&[2])?;
        let t = g.slice(&kshape, &one_i, &two_i, None, None)?;
        let l = g.slice(&xshape, &one_i, &two_i, None, None)?;
        let t = g.squeeze(&t, &[0])?;
        let l = g.squeeze(&l, &[0])?;
        let past = g.sub(&t, &l)?;
        let zero = g.const_i64(0)?;
        let step = g.const_i64(1)?;
        let kpos = g.range(&zero, &t, &step)?;
        let qpos = g.range(&past, &t, &step)?;
        let kpos = g.unsqueeze(&kpos, &[0])?;
        let qpos = g.unsqueeze(&qpos, &[1])?;
        let causal = g.node("LessOrEqual", &[&kpos, &qpos]).output()?;
        let causal = g.unsqueeze(&causal, &[0])?;
        let valid = g.cast(key_mask, ElemType::Bool)?;
        let valid = g.unsqueeze(&valid, &[1])?;
        let allowed = g.and(&causal, &valid)?;
        let zero_f = g.scalar(0f32)?;
        let min_f = g.scalar(MASK_MIN)?;
        let mask = g.where_(&allowed, &zero_f, &min_f)?;
        Ok(g.unsqueeze(&mask, &[1, 2])?)
    })
}

fn rotate_half(g: &mut GraphBuilder, x: &Value, hd: i64) -> Result<Value> {
    let axis = g.const_i64s(&[3])?;
    let (s0, mid, end) = (
        g.const_i64s(&[0])?,
        g.const_i64s(&[hd / 2])?,
        g.const_i64s(&[hd])?,
    );
    let x1 = g.slice(x, &s0, &mid, Some(&axis), None)?;
    let x2 = g.slice(x, &mid, &end, Some(&axis), None)?;
    let nx2 = g.neg(&x2)?;
    Ok(g.concat(&[&nx2, &x1], 3)?)
}

fn apply_rope(g: &mut GraphBuilder, x: &Value, s: &Shared, hd: i64) -> Result<Value> {
    let a = g.mul(x, &s.cos)?;
    let r = rotate_half(g, x, hd)?;
    let b = g.mul(&r, &s.sin)?;
    Ok(g.add(&a, &b)?)
}

/// `[B, L, n*hd]` -> `[B, n, L, hd]`.
fn split_heads(g: &mut GraphBuilder, x: &Value, n: i64, hd: i64) -> Result<Value> {
    let shape = g.const_i64s(&[0, 0, n, hd])?;
    let x = g.reshape(x, &shape)?;
    Ok(g.transpose(&x, &[0, 2, 1, 3])?)
}

/// Past K/V fed to a layer and the present K/V it returns, `[B, kv_heads, T, hd]`.
pub struct LayerCache<'a> {
    pub past_key: &'a Value,
    pub past_value: &'a Value,
    pub present_key: &'a str,
    pub present_value: &'a str,
}

/// Graph-wide inputs of `com.microsoft:GroupQueryAttention` (the shared-buffer cache).
pub struct GqaInputs {
    /// `[B]` int32: tokens in each row's cache after this run, minus one.
    pub seqlens_k: Value,
    /// `[]` int32: tokens in the cache after this run.
    pub total_len: Value,
    /// `[max_context, head_dim / 2]` in the export dtype, from f32 frequencies.
    pub cos_cache: Value,
    pub sin_cache: Value,
}

/// How a layer's attention is built.
pub enum Attention<'a> {
    /// Standard ops: RoPE tables and additive mask from `Shared`; with a cache, the
    /// present K/V are Concat(past, new) (copies the cache every step).
    Standard {
        shared: &'a Shared,
        cache: Option<LayerCache<'a>>,
    },
    /// GroupQueryAttention (rotary inside) reading and writing the cache in place
    /// when past and present are bound to one buffer; without a cache (the
    /// encoder), a prompt over right-padded rows.
    Gqa {
        inputs: &'a GqaInputs,
        cache: Option<LayerCache<'a>>,
    },
}

/// `self_attn` at scope `key`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    cfg: &Qwen2Config,
    key: &str,
    x: &Value,
    attn: &Attention<'_>,
) -> Result<Value> {
    let ctx = match attn {
        Attention::Standard { shared, cache } => {
            let q = linear(g, w, folder, &format!("{key}.q_proj"), x, true)?;
            let k = linear(g, w, folder, &format!("{key}.k_proj"), x, true)?;
            let v = linear(g, w, folder, &format!("{key}.v_proj"), x, true)?;
            g.scoped(key, |g| {
                standard_core(g, w.elem(), cfg, &q, &k, &v, shared, cache.as_ref())
            })?
        }
        Attention::Gqa { inputs, cache } => {
            let qkv = packed_qkv(g, w, folder, key, x)?;
            g.scoped(key, |g| gqa_core(g, cfg, &qkv, inputs, cache.as_ref()))?
        }
    };
    linear(g, w, folder, &format!("{key}.o_proj"), &ctx, false)
}

/// Attention from projected `q`/`k`/`v` `[B, L, heads*hd]` in standard ops. Query
/// heads are grouped by KV head (`[B, kv, rep, L, hd]`) so K/V are broadcast, never
/// copied `rep` times.
#[allow(clippy::too_many_arguments)]
fn standard_core(
    g: &mut GraphBuilder,
    dtype: ElemType,
    cfg: &Qwen2Config,
    q: &Value,
    k: &Value,
    v: &Value,
    s: &Shared,
    cache: Option<&LayerCache<'_>>,
) -> Result<Value> {
    let (h, kv, hd) = (
        cfg.num_attention_heads as i64,
        cfg.num_key_value_heads as i64,
        cfg.head_dim() as i64,
    );
    let q = split_heads(g, q, h, hd)?;
    let q = apply_rope(g, &q, s, hd)?;
    let k = split_heads(g, k, kv, hd)?;
    let mut k = apply_rope(g, &k, s, hd)?;
    let mut v = split_heads(g, v, kv, hd)?;
    if let Some(c) = cache {
        k = g
            .node("Concat", &[c.past_key, &k])
            .attr("axis", 2i64)
            .output_names(&[c.present_key])
            .output()?;
        v = g
            .node("Concat", &[c.past_value, &v])
            .attr("axis", 2i64)
            .output_names(&[c.present_value])
            .output()?;
    }
    let q5_shape = g.const_i64s(&[0, kv, h / kv, -1, hd])?;
    let q5 = g.reshape(&q, &q5_shape)?;
    let k5 = g.unsqueeze(&k, &[2])?;
    let kt = g.transpose(&k5, &[0, 1, 2, 4, 3])?;
    let scores = g.matmul(&q5, &kt)?;
    let scale = g.scalar_as(dtype, (hd as f64).powf(-0.5))?;
    let scores = g.mul(&scores, &scale)?;
    let scores = cast_if(g, &scores, ElemType::F32)?;
    let scores = g.add(&scores, &s.mask)?;
    let probs = g.softmax(&scores, -1)?;
    let probs = cast_if(g, &probs, dtype)?;
    let v5 = g.unsqueeze(&v, &[2])?;
    let ctx = g.matmul(&probs, &v5)?;
    let heads_shape = g.const_i64s(&[0, h, -1, hd])?;
    let ctx = g.reshape(&ctx, &heads_shape)?;
    let ctx = g.transpose(&ctx, &[0, 2, 1, 3])?;
    let flat = g.const_i64s(&[0, 0, h * hd])?;
    Ok(g.reshape(&ctx, &flat)?)
}

/// Attention from the packed projections `qkv` `[B, L, (heads + 2 kv) * hd]` by one
/// GroupQueryAttention node: non-interleaved (rotate-half) rotary at positions
/// `seqlens_k`-derived (0..L-1 for a prefill, `seqlens_k` for a step), causal,
/// softmax in f32, scale hd^-0.5.
///
/// Without a cache the present outputs are still named (left unused): ONNX Runtime's
/// CPU kernel takes its flash-attention path (tiles of the scores, never `[heads, L,
/// L]`) only when both presents exist, and otherwise materialises every score.
fn gqa_core(
    g: &mut GraphBuilder,
    cfg: &Qwen2Config,
    qkv: &Value,
    inputs: &GqaInputs,
    c: Option<&LayerCache<'_>>,
) -> Result<Value> {
    let out = g.key("attn_output");
    let hd = cfg.head_dim() as f64;
    let (present_key, present_value) = match c {
        Some(c) => (c.present_key.to_owned(), c.present_value.to_owned()),
        None => (g.key("present_key"), g.key("present_value")),
    };
    let mut outs = g
        .node_with_optional(
            "GroupQueryAttention",
            &[
                Some(qkv),
                None,
                None,
                c.map(|c| c.past_key),
                c.map(|c| c.past_value),
                Some(&inputs.seqlens_k),
                Some(&inputs.total_len),
                Some(&inputs.cos_cache),
                Some(&inputs.sin_cache),
            ],
        )
        .domain(MS_DOMAIN)
        .attr("num_heads", cfg.num_attention_heads as i64)
        .attr("kv_num_heads", cfg.num_key_value_heads as i64)
        .attr("do_rotary", 1i64)
        .attr("rotary_interleaved", 0i64)
        .attr("scale", hd.powf(-0.5) as f32)
        .output_names(&[&out, &present_key, &present_value])
        .outputs(3)?;
    // The attention output; the presents are graph outputs (found by name) or unused.
    Ok(outs.remove(0))
}

/// RoPE cos/sin caches `[max_positions, head_dim / 2]` for GroupQueryAttention: the
/// same f32 arithmetic as [`rope_tables`] (position * theta^(-2i/d), then cos/sin),
/// done here once instead of per run, stored in the export dtype.
pub fn rope_caches(
    g: &mut GraphBuilder,
    cfg: &Qwen2Config,
    dtype: ElemType,
) -> Result<(Value, Value)> {
    let (hd, max) = (cfg.head_dim(), cfg.max_position_embeddings);
    let inv_freq: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / (cfg.rope_theta as f32).powf((2 * i) as f32 / hd as f32))
        .collect();
    let (mut cos, mut sin) = (
        Vec::with_capacity(max * hd / 2),
        Vec::with_capacity(max * hd / 2),
    );
    for p in 0..max {
        for f in &inv_freq {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    let shape = [max as i64, (hd / 2) as i64];
    g.scoped("rotary_emb", |g| -> Result<(Value, Value)> {
        let cos = g.constant(&shape, &cos)?;
        let sin = g.constant(&shape, &sin)?;
        Ok((cast_if(g, &cos, dtype)?, cast_if(g, &sin, dtype)?))
    })
}

/// `mlp` at scope `key`: `down(silu(gate(x)) * up(x))`.
pub fn mlp(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    key: &str,
    x: &Value,
) -> Result<Value> {
    let gate = linear(g, w, folder, &format!("{key}.gate_proj"), x, false)?;
    let up = linear(g, w, folder, &format!("{key}.up_proj"), x, false)?;
    let act = g.scoped(key, |g| -> Result<Value> {
        let sig = g.sigmoid(&gate)?;
        let silu = g.mul(&gate, &sig)?;
        Ok(g.mul(&silu, &up)?)
    })?;
    linear(g, w, folder, &format!("{key}.down_proj"), &act, false)
}

/// The attention half of the pre-norm layer `{prefix}.layers.{i}`:
/// `x + self_attn(input_layernorm(x))`.
#[allow(clippy::too_many_arguments)]
pub fn attention_block(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    cfg: &Qwen2Config,
    prefix: &str,
    i: usize,
    x: &Value,
    attn: &Attention<'_>,
) -> Result<Value> {
    let key = format!("{prefix}.layers.{i}");
    residual(g, w, folder, cfg, &key, "input_layernorm", x, |g, h| {
        attention(g, w, folder, cfg, &format!("{key}.self_attn"), h, attn)
    })
}

/// The MLP half of the pre-norm layer `{prefix}.layers.{i}`:
/// `x + mlp(post_attention_layernorm(x))`, per position.
pub fn mlp_block(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    cfg: &Qwen2Config,
    prefix: &str,
    i: usize,
    x: &Value,
) -> Result<Value> {
    let key = format!("{prefix}.layers.{i}");
    residual(
        g,
        w,
        folder,
        cfg,
        &key,
        "post_attention_layernorm",
        x,
        |g, h| mlp(g, w, folder, &format!("{key}.mlp"), h),
    )
}

/// `x + f(norm(x))` for the norm `{key}.{norm}`, the add at scope `key`.
#[allow(clippy::too_many_arguments)]
fn residual(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    cfg: &Qwen2Config,
    key: &str,
    norm: &str,
    x: &Value,
    f: impl FnOnce(&mut GraphBuilder, &Value) -> Result<Value>,
) -> Result<Value> {
    let h = rms_norm(g, w, folder, &format!("{key}.{norm}"), x, cfg.rms_norm_eps)?;
    let y = f(g, &h)?;
    Ok(g.scoped(key, |g| g.add(x, &y))?)
}
