//! Qwen2 decoder-only transformer (both the encoder `llm1` and the decoder are
//! Qwen2): GQA attention with q/k/v bias and RoPE, SwiGLU MLP, pre-norm blocks.
//! Inputs are embeddings, because C3 substitutes rows (Q, latents) before the
//! first block.

use tch::nn::Path;
use tch::{Kind, Tensor};

use crate::kv_cache::KvCache;
use crate::nn::{Embedding, Linear, RmsNorm};
use crate::rope::{self, Rope};
use c3_core::Qwen2Config;

/// `self_attn`: q/k/v with bias, o without, grouped-query attention.
#[derive(Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(p: Path, c: &Qwen2Config) -> Self {
        let (h, kv) = (c.hidden_size, c.num_key_value_heads * c.head_dim());
        Attention {
            q_proj: Linear::new(&p / "q_proj", h, h, true),
            k_proj: Linear::new(&p / "k_proj", h, kv, true),
            v_proj: Linear::new(&p / "v_proj", h, kv, true),
            o_proj: Linear::new(&p / "o_proj", h, h, false),
            heads: c.num_attention_heads as i64,
            kv_heads: c.num_key_value_heads as i64,
            head_dim: c.head_dim() as i64,
        }
    }

    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor {
        let (b, l) = (x.size()[0], x.size()[1]);
        let split = |t: Tensor, n: i64| t.view([b, l, n, self.head_dim]).transpose(1, 2);
        let q = rope::apply(&split(self.q_proj.forward(x), self.heads), cos, sin);
        let k = rope::apply(&split(self.k_proj.forward(x), self.kv_heads), cos, sin);
        let v = split(self.v_proj.forward(x), self.kv_heads);
        let (k, v) = match cache {
            Some((c, layer)) => c.append(layer, k, v),
            None => (k, v),
        };
        // Each kv head serves `rep` consecutive query heads (HF repeat_kv).
        let rep = self.heads / self.kv_heads;
        let (k, v) = (
            k.repeat_interleave_self_int(rep, 1, None),
            v.repeat_interleave_self_int(rep, 1, None),
        );
        let scores = q.matmul(&k.transpose(2, 3)) * (self.head_dim as f64).powf(-0.5) + mask;
        let probs = scores.softmax(-1, Kind::Float).to_kind(q.kind());
        let out =
            probs
                .matmul(&v)
                .transpose(1, 2)
                .contiguous()
                .view([b, l, self.heads * self.head_dim]);
        self.o_proj.forward(&out)
    }
}

/// `mlp`: SwiGLU, no biases.
#[derive(Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    fn new(p: Path, c: &Qwen2Config) -> Self {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Mlp {
            gate_proj: Linear::new(&p / "gate_proj", h, i, false),
            up_proj: Linear::new(&p / "up_proj", h, i, false),
            down_proj: Linear::new(&p / "down_proj", i, h, false),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.down_proj
            .forward(&(self.gate_proj.forward(x).silu() * self.up_proj.forward(x)))
    }
}

/// `model.layers.{i}`.
#[derive(Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
}

/// `model`: embeddings, blocks, final norm.
#[derive(Debug)]
pub struct Qwen2Model {
    pub embed_tokens: Embedding,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    rope: Rope,
}

impl Qwen2Model {
    /// Creates the variables under `p` (which should be `.../model`).
    pub fn new(p: Path, c: &Qwen2Config) -> Self {
        let eps = c.rms_norm_eps;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let lp = &p / "layers" / i;
                DecoderLayer {
                    input_layernorm: RmsNorm::new(&lp / "input_layernorm", c.hidden_size, eps),
                    self_attn: Attention::new(&lp / "self_attn", c),
                    post_attention_layernorm: RmsNorm::new(
                        &lp / "post_attention_layernorm",
                        c.hidden_size,
                        eps,
                    ),
                    mlp: Mlp::new(&lp / "mlp", c),
                }
            })
            .collect();
        Qwen2Model {
            embed_tokens: Embedding::new(&p / "embed_tokens", c.vocab_size, c.hidden_size),
            layers,
            norm: RmsNorm::new(&p / "norm", c.hidden_size, eps),
            rope: Rope::new(c.head_dim(), c.rope_theta, p.device()),
        }
    }

    /// Runs the blocks on `embeds` `[B, L, H]` at `positions` `[B, L]` with an
    /// additive attention mask `[B, 1, L, T]` (T = cached + L). Returns the last
    /// hidden state after the final norm.
    pub fn forward(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor {
        let (cos, sin) = self.rope.cos_sin(positions, embeds.kind());
        let mut h = embeds.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let c = cache.as_deref_mut().map(|c| (c, i));
            let a =
                layer
                    .self_attn
                    .forward(&layer.input_layernorm.forward(&h), &cos, &sin, mask, c);
            h = h + a;
            h = &h
                + layer
                    .mlp
                    .forward(&layer.post_attention_layernorm.forward(&h));
        }
        self.norm.forward(&h)
    }
}

/// Additive mask `[B, 1, L, T]`: query i (absolute position past+i) sees key j iff
/// j <= past+i and key j is not padding. Masked entries get the most negative
/// finite f32 (not -inf) so a fully padded row yields a finite, unused output.
pub fn attention_mask(key_valid: &Tensor, q_len: i64) -> Tensor {
    let (b, t) = (key_valid.size()[0], key_valid.size()[1]);
    let past = t - q_len;
    let dev = key_valid.device();
    let qi = Tensor::arange(q_len, (Kind::Int64, dev)).view([q_len, 1]) + past;
    let kj = Tensor::arange(t, (Kind::Int64, dev)).view([1, t]);
    let causal = kj.le_tensor(&qi).view([1, 1, q_len, t]);
    let valid = key_valid.to_kind(Kind::Bool).view([b, 1, 1, t]);
    let allowed = causal.logical_and(&valid);
    Tensor::zeros([b, 1, q_len, t], (Kind::Float, dev))
        .masked_fill(&allowed.logical_not(), f32::MIN as f64)
}
