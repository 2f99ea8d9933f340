//! The three exported graphs (export/CONTRACT.md): `encoder.onnx` (text ids ->
//! projected latents), `decoder.onnx` (token ids and/or embeddings + KV cache ->
//! last-position logits + present) and
//! `embed_tokens.onnx` (decoder token embedding).

use crate::error::Result;
use c3_core::C3Config;
use c3_core::contract::{decoder, embed_tokens, encoder};
use c3_onnx::{Dim, ElemType, GraphBuilder, Model, Value};

use c3_core::KvCache;

use crate::qwen2::{self, Attention, GqaInputs, LayerCache, Shared};
use crate::weights::{Folder, Weights};

/// `encoder.onnx`: `input_ids`/`attention_mask` `[batch, text_len]` (left-padded) ->
/// `latents` `[batch, N, D_dec]`. Inside: `<img>` and the N rows of `model.Q.weight`
/// appended after the text, positions `max(cumsum(mask) - 1, 0)`, the encoder
/// (`llm1.model`) whose last layer's MLP and final norm run on each row's N latent
/// positions only (its last N, or with fused attention where `RightPadded::last`
/// finds them), then `model.mm_projector`.
///
/// With `fused_attention` (`--target ort`), attention is ONNX Runtime's
/// GroupQueryAttention (encoder_gqa.rs): no `[heads, L, L]` scores in memory.
pub fn encoder(
    cfg: &C3Config,
    w: &Weights,
    img_start: u32,
    fused_attention: bool,
) -> Result<Model> {
    let enc = &cfg.encoder;
    let (n, de) = (cfg.n_latents() as i64, enc.hidden_size as i64);
    let mut g = GraphBuilder::new("c3_encoder");
    let text = [Dim::sym("batch"), Dim::sym("text_len")];
    let ids = g.input(encoder::INPUT_IDS, ElemType::I64, &text)?;
    let mask = g.input(encoder::ATTENTION_MASK, ElemType::I64, &text)?;
    let embed = w.plain(&mut g, Folder::Llm1, "model.embed_tokens.weight")?;
    let q_weight = w.plain(&mut g, Folder::Root, "model.Q.weight")?;
    let (x, full_mask, positions) = g.scoped("model", |g| -> Result<_> {
        let emb = g.gather(&embed, &ids, 0)?;
        let shape = g.shape_of(&ids)?;
        let (s0, s1) = (g.const_i64s(&[0])?, g.const_i64s(&[1])?);
        let b = g.slice(&shape, &s0, &s1, None, None)?;
        // `<img>` row, then Q, broadcast over the batch.
        let img_id = g.const_i64s(&[img_start as i64])?;
        let img = g.gather(&embed, &img_id, 0)?;
        let img = g.unsqueeze(&img, &[0])?;
        let d = g.const_i64s(&[de])?;
        let img_shape = g.concat(&[&b, &s1, &d], 0)?;
        let img = g.expand(&img, &img_shape)?;
        let q = g.unsqueeze(&q_weight, &[0])?;
        let nn = g.const_i64s(&[n])?;
        let q_shape = g.concat(&[&b, &nn, &d], 0)?;
        let q = g.expand(&q, &q_shape)?;
        let x = g.concat(&[&emb, &img, &q], 1)?;
        let extra = g.const_i64s(&[n + 1])?;
        let ones_shape = g.concat(&[&b, &extra], 0)?;
        let ones = g.constant_of_shape(&ones_shape, ElemType::I64, 1.0)?;
        let full_mask = g.concat(&[&mask, &ones], 1)?;
        let pos = g.cumsum(&full_mask, 1)?;
        let one = g.const_i64(1)?;
        let pos = g.sub(&pos, &one)?;
        let zero = g.const_i64(0)?;
        let positions = g.max(&pos, &zero)?;
        Ok((x, full_mask, positions))
    })?;
    // The N latent positions of each row: where each row's real length puts them
    // after the rotation to right padding (fused attention), or every row's last N
    // (left padding). Only they go on past the last attention.
    let (rows, shared_inputs);
    type Keep<'a> = Box<dyn FnOnce(&mut GraphBuilder, &Value) -> Result<Value> + 'a>;
    let (attn, x, keep): (Attention<'_>, Value, Keep<'_>) = if fused_attention {
        rows = crate::encoder_gqa::RightPadded::new(&mut g, enc, &x, &full_mask, w.elem())?;
        let attn = Attention::Gqa {
            inputs: &rows.gqa,
            cache: None,
        };
        (attn, rows.x.clone(), Box::new(|g, h| rows.last(g, h, n)))
    } else {
        shared_inputs = shared(&mut g, enc, &positions, &full_mask, &x, w.elem())?;
        let attn = Attention::Standard {
            shared: &shared_inputs,
            cache: None,
        };
        (attn, x, Box::new(|g, h| last_positions(g, h, n)))
    };
    let last = stack(
        &mut g,
        w,
        Folder::Llm1,
        enc,
        x,
        |g, i, h| qwen2::attention_block(g, w, Folder::Llm1, enc, "model", i, h, &attn),
        keep,
    )?;
    let last = qwen2::rms_norm(
        &mut g,
        w,
        Folder::Llm1,
        "model.norm",
        &last,
        enc.rms_norm_eps,
    )?;
    let latents = qwen2::linear(&mut g, w, Folder::Root, "model.mm_projector", &last, true)?;
    let latents = g
        .node("Identity", &[&latents])
        .output_names(&[encoder::LATENTS])
        .output()?;
    let d_dec = cfg.decoder.hidden_size as i64;
    g.output(
        &latents,
        w.elem(),
        &[Dim::sym("batch"), Dim::Fixed(n), Dim::Fixed(d_dec)],
    )?;
    Ok(g.finish())
}

fn shared(
    g: &mut GraphBuilder,
    cfg: &c3_core::Qwen2Config,
    positions: &Value,
    key_mask: &Value,
    x: &Value,
    dtype: ElemType,
) -> Result<Shared> {
    let (cos, sin) = g.scoped("model", |g| qwen2::rope_tables(g, cfg, positions, dtype))?;
    let mask = g.scoped("model", |g| qwen2::attention_mask(g, key_mask, x))?;
    Ok(Shared { cos, sin, mask })
}

/// The stack of `cfg`'s layers over `x`, when only the positions `keep` picks are
/// needed at the end. The last layer's attention still sees every position (and a
/// decoder's writes every position's K/V); its MLP, most of a layer's work, and
/// everything after it are per position, so they run on the kept positions only.
/// `attention(g, i, h)` is layer `i`'s attention half.
fn stack(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    cfg: &c3_core::Qwen2Config,
    x: Value,
    mut attention: impl FnMut(&mut GraphBuilder, usize, &Value) -> Result<Value>,
    keep: impl FnOnce(&mut GraphBuilder, &Value) -> Result<Value>,
) -> Result<Value> {
    let Some(last) = cfg.num_hidden_layers.checked_sub(1) else {
        return keep(g, &x);
    };
    let mut h = x;
    for i in 0..last {
        h = attention(g, i, &h)?;
        h = qwen2::mlp_block(g, w, folder, cfg, "model", i, &h)?;
    }
    let h = attention(g, last, &h)?;
    let h = keep(g, &h)?;
    qwen2::mlp_block(g, w, folder, cfg, "model", last, &h)
}

/// The last `n` positions of `h` `[batch, seq, hidden]`.
fn last_positions(g: &mut GraphBuilder, h: &Value, n: i64) -> Result<Value> {
    g.scoped("model", |g| -> Result<Value> {
        let (start, end, axis) = (
            g.const_i64s(&[-n])?,
            g.const_i64s(&[i64::MAX])?,
            g.const_i64s(&[1])?,
        );
        Ok(g.slice(h, &start, &end, Some(&axis), None)?)
    })
}

/// `decoder.onnx`: one graph for prefill and KV-cached steps, with the cache contract
/// `kv` (export/CONTRACT.md).
pub fn decoder(cfg: &C3Config, w: &Weights, kv: KvCache, takes_ids: bool) -> Result<Model> {
    let dec = &cfg.decoder;
    let (kv_heads, hd) = (dec.num_key_value_heads as i64, dec.head_dim() as i64);
    let mut g = GraphBuilder::new("c3_decoder");
    let hidden = Dim::Fixed(dec.hidden_size as i64);
    // A run's new positions: `inputs_embeds` (the latents, or nothing in a decode
    // step), then `input_ids`, embedded here, so a decode step is one run. Or, with
    // `--decoder-embeds-only`, embeddings only (`embed_tokens.onnx` makes them).
    let (embeds, table) = if takes_ids {
        let ids = g.input(
            decoder::INPUT_IDS,
            ElemType::I64,
            &[Dim::sym("batch"), Dim::sym("ids_len")],
        )?;
        let given = g.input(
            decoder::INPUTS_EMBEDS,
            w.elem(),
            &[Dim::sym("batch"), Dim::sym("embeds_len"), hidden],
        )?;
        let table = w.plain(&mut g, Folder::Root, "model.embed_tokens.weight")?;
        let embeds = g.scoped("model.embed_tokens", |g| -> Result<Value> {
            let tokens = g.gather(&table, &ids, 0)?;
            Ok(g.concat(&[&given, &tokens], 1)?)
        })?;
        (embeds, Some(table))
    } else {
        let embeds = g.input(
            decoder::INPUTS_EMBEDS,
            w.elem(),
            &[Dim::sym("batch"), Dim::sym("seq"), hidden],
        )?;
        (embeds, None)
    };
    // Concat: the cache holds exactly the past; shared buffer: it is preallocated.
    let (past_len, present_len) = match kv {
        KvCache::Concat => ("past_len", "total_len"),
        KvCache::SharedBuffer => ("max_len", "max_len"),
    };
    let cache_dims = |len: &str| {
        [
            Dim::sym("batch"),
            Dim::Fixed(kv_heads),
            Dim::sym(len),
            Dim::Fixed(hd),
        ]
    };
    // Standard graphs take a mask and positions; GQA derives both from the lengths.
    enum Attn {
        Standard(Shared),
        Gqa(GqaInputs),
    }
    let attn_inputs = match kv {
        KvCache::Concat => {
            let mask = g.input(
                decoder::ATTENTION_MASK,
                ElemType::I64,
                &[Dim::sym("batch"), Dim::sym("total_len")],
            )?;
            let positions = g.input(
                decoder::POSITION_IDS,
                ElemType::I64,
                &[Dim::sym("batch"), Dim::sym("seq")],
            )?;
            Attn::Standard(self::shared(
                &mut g,
                dec,
                &positions,
                &mask,
                &embeds,
                w.elem(),
            )?)
        }
        KvCache::SharedBuffer => {
            let seqlens_k = g.input(decoder::SEQLENS_K, ElemType::I32, &[Dim::sym("batch")])?;
            let total_len = g.input(decoder::TOTAL_SEQUENCE_LENGTH, ElemType::I32, &[])?;
            let (cos_cache, sin_cache) =
                g.scoped("model", |g| qwen2::rope_caches(g, dec, w.elem()))?;
            Attn::Gqa(GqaInputs {
                seqlens_k,
                total_len,
                cos_cache,
                sin_cache,
            })
        }
    };
    let mut past = Vec::new();
    for i in 0..dec.num_hidden_layers {
        let k = g.input(&decoder::past(i, "key"), w.elem(), &cache_dims(past_len))?;
        let v = g.input(&decoder::past(i, "value"), w.elem(), &cache_dims(past_len))?;
        past.push((k, v));
    }
    // Only the last position's logits are ever used (greedy needs the next token):
    // after the last layer's attention (which still writes every position's K/V),
    // its MLP, the final norm and the LM head run on the last position only. That
    // saves (seq - 1) x vocab x hidden MACs of LM head per prefill, ~25% of a
    // 64-token prefill at Qwen2.5-0.5B shapes, and 1/layers of the rest.
    let h = stack(
        &mut g,
        w,
        Folder::Root,
        dec,
        embeds,
        |g, i, h| {
            let (ok, ov) = (decoder::present(i, "key"), decoder::present(i, "value"));
            let (pk, pv) = &past[i];
            let cache = LayerCache {
                past_key: pk,
                past_value: pv,
                present_key: &ok,
                present_value: &ov,
            };
            let attn = match &attn_inputs {
                Attn::Standard(shared) => Attention::Standard {
                    shared,
                    cache: Some(cache),
                },
                Attn::Gqa(inputs) => Attention::Gqa {
                    inputs,
                    cache: Some(cache),
                },
            };
            qwen2::attention_block(g, w, Folder::Root, dec, "model", i, h, &attn)
        },
        |g, h| last_positions(g, h, 1),
    )?;
    let h = qwen2::rms_norm(&mut g, w, Folder::Root, "model.norm", &h, dec.rms_norm_eps)?;
    let head_key = if dec.tie_word_embeddings {
        "model.embed_tokens.weight"
    } else {
        "lm_head.weight"
    };
    // Quantized with the layers unless `--keep-lm-head`: the head is vocab x hidden,
    // a quarter of a 0.5B decoder's bytes, read once per decode step. The tied
    // embedding is already MatMulNBits' [N = vocab, K = hidden] layout.
    let quant_head = w.quant.filter(|q| q.lm_head);
    let head = match (quant_head, dec.tie_word_embeddings, &table) {
        (Some(spec), _, _) => Head::Quantized(spec),
        // The embedding table the graph already holds, `[vocab, hidden]`, read
        // transposed: one copy of the largest tensor, not two.
        (None, true, Some(table)) => Head::Table(table.clone()),
        _ => Head::Transposed(w.transposed(&mut g, Folder::Root, head_key)?),
    };
    let logits = g.scoped("lm_head", |g| -> Result<Value> {
        let y = match &head {
            Head::Transposed(head) => g.matmul(&h, head)?,
            Head::Table(table) => {
                // Gemm is 2-D: `[batch, hidden]` x table^T, back to `[batch, 1, vocab]`.
                let flat = g.const_i64s(&[-1, dec.hidden_size as i64])?;
                let h2 = g.reshape(&h, &flat)?;
                let y = g.gemm(&h2, table, None, true)?;
                g.unsqueeze(&y, &[1])?
            }
            Head::Quantized(spec) => {
                crate::quantize::linear(g, w, Folder::Root, head_key, &h, *spec)?
            }
        };
        // Logits are f32 whatever the dtype: the greedy choice must not hinge on
        // half-precision rounding of the output.
        let y = if w.elem() == ElemType::F32 {
            y
        } else {
            g.cast(&y, ElemType::F32)?
        };
        Ok(g.node("Identity", &[&y])
            .output_names(&[decoder::LOGITS])
            .output()?)
    })?;
    g.output(
        &logits,
        ElemType::F32,
        &[
            Dim::sym("batch"),
            Dim::Fixed(1),
            Dim::Fixed(dec.vocab_size as i64),
        ],
    )?;
    for i in 0..dec.num_hidden_layers {
        for kind in decoder::KINDS {
            let name = decoder::present(i, kind);
            let present = g
                .value(&name)
                .ok_or(c3_onnx::Error::UndefinedOutput(name))?;
            g.output(&present, w.elem(), &cache_dims(present_len))?;
        }
    }
    Ok(g.finish())
}

/// How the decoder's LM head holds its weight.
enum Head {
    /// `lm_head.weight` transposed to `[hidden, vocab]` for MatMul (untied head).
    Transposed(Value),
    /// The tied embedding table `[vocab, hidden]`, used by Gemm with transB.
    Table(Value),
    /// MatMulNBits (`--quantize`).
    Quantized(crate::quantize::QuantSpec),
}

/// `embed_tokens.onnx`: `input_ids` `[batch, seq]` -> `inputs_embeds` `[batch, seq, D_dec]`.
pub fn embed_tokens(cfg: &C3Config, w: &Weights) -> Result<Model> {
    let mut g = GraphBuilder::new("c3_embed_tokens");
    let ids = g.input(
        embed_tokens::INPUT_IDS,
        ElemType::I64,
        &[Dim::sym("batch"), Dim::sym("seq")],
    )?;
    let table = w.plain(&mut g, Folder::Root, "model.embed_tokens.weight")?;
    let out = g.scoped("model.embed_tokens", |g| -> Result<Value> {
        Ok(g.node("Gather", &[&table, &ids])
            .attr("axis", 0i64)
            .output_names(&[embed_tokens::INPUTS_EMBEDS])
            .output()?)
    })?;
    let d = cfg.decoder.hidden_size as i64;
    g.output(
        &out,
        w.elem(),
        &[Dim::sym("batch"), Dim::sym("seq"), Dim::Fixed(d)],
    )?;
    Ok(g.finish())
}
