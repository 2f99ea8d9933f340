//! Which tensors each folder of the release layout must hold, with their shapes,
//! derived from the config. Loader, writer, exporter and initialiser all use this
//! one list, so they cannot drift apart.

use crate::config::{C3Config, Qwen2Config};

/// A tensor's checkpoint key and expected shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

fn spec(name: String, shape: &[usize]) -> TensorSpec {
    TensorSpec {
        name,
        shape: shape.to_vec(),
    }
}

/// The `model.*` tensors of a Qwen2 causal LM (no `lm_head`).
fn qwen2_body(cfg: &Qwen2Config) -> Vec<TensorSpec> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let kv = cfg.num_key_value_heads * cfg.head_dim();
    let mut v = vec![spec(
        "model.embed_tokens.weight".into(),
        &[cfg.vocab_size, h],
    )];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        v.extend([
            spec(format!("{p}.input_layernorm.weight"), &[h]),
            spec(format!("{p}.self_attn.q_proj.weight"), &[h, h]),
            spec(format!("{p}.self_attn.q_proj.bias"), &[h]),
            spec(format!("{p}.self_attn.k_proj.weight"), &[kv, h]),
            spec(format!("{p}.self_attn.k_proj.bias"), &[kv]),
            spec(format!("{p}.self_attn.v_proj.weight"), &[kv, h]),
            spec(format!("{p}.self_attn.v_proj.bias"), &[kv]),
            spec(format!("{p}.self_attn.o_proj.weight"), &[h, h]),
            spec(format!("{p}.post_attention_layernorm.weight"), &[h]),
            spec(format!("{p}.mlp.gate_proj.weight"), &[i, h]),
            spec(format!("{p}.mlp.up_proj.weight"), &[i, h]),
            spec(format!("{p}.mlp.down_proj.weight"), &[h, i]),
        ]);
    }
    v.push(spec("model.norm.weight".into(), &[h]));
    v
}

fn lm_head(cfg: &Qwen2Config) -> TensorSpec {
    spec("lm_head.weight".into(), &[cfg.vocab_size, cfg.hidden_size])
}

/// Tensors the encoder folder (`llm1/`) must hold. Its `lm_head` is never used by
/// C3, so it is not required here; [`encoder_tensors_to_write`] adds it when untied.
pub fn encoder_tensors(cfg: &Qwen2Config) -> Vec<TensorSpec> {
    qwen2_body(cfg)
}

/// Tensors a writer emits for `llm1/`: the body plus `lm_head` when untied, so the
/// folder stays a standard Qwen2ForCausalLM state dict.
pub fn encoder_tensors_to_write(cfg: &Qwen2Config) -> Vec<TensorSpec> {
    let mut v = qwen2_body(cfg);
    if !cfg.tie_word_embeddings {
        v.push(lm_head(cfg));
    }
    v
}

/// Tensors the root folder must hold: decoder body, `lm_head` when untied, and
/// the C3 extras `model.Q.weight` [N, D_enc], `model.mm_projector.{weight,bias}`.
pub fn decoder_tensors(cfg: &C3Config) -> Vec<TensorSpec> {
    let d = &cfg.decoder;
    let mut v = qwen2_body(d);
    if !d.tie_word_embeddings {
        v.push(lm_head(d));
    }
    let (n, de) = (cfg.c3.latent_token_len, cfg.encoder.hidden_size);
    v.extend([
        spec("model.Q.weight".into(), &[n, de]),
        spec("model.mm_projector.weight".into(), &[d.hidden_size, de]),
        spec("model.mm_projector.bias".into(), &[d.hidden_size]),
    ]);
    v
}
