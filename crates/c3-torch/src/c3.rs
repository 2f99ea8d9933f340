//! The cascade: encoder `llm1` with context-query substitution and post-norm
//! latent extraction, the projector, and the decoder with latent injection.

use tch::nn::{Init, Path, VarStore};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::kv_cache::KvCache;
use crate::nn::Linear;
use crate::qwen2::{Qwen2Model, attention_mask};
use c3_core::{C3Config, DecoderPrompt};

/// A C3 model. Variables live in a VarStore under their checkpoint keys
/// (encoder under `llm1.`); the model itself is immutable state-free code.
pub struct C3Model {
    pub config: C3Config,
    /// `llm1.model`: the encoder LLM.
    pub llm1: Qwen2Model,
    /// `model`: the decoder LLM.
    pub model: Qwen2Model,
    /// `model.Q.weight` `[N, D_enc]`: the learned context queries.
    pub q: Tensor,
    /// `model.mm_projector`: D_enc -> D_dec with bias.
    pub mm_projector: Linear,
    /// `lm_head.weight`, or `model.embed_tokens.weight` when tied.
    pub lm_head: Tensor,
    /// Encoder's `lm_head` (never used by C3; kept so a checkpoint round-trips).
    pub llm1_lm_head: Option<Tensor>,
}

/// A left-padded batch of encoder inputs (each ends with `<img>` + N slots).
pub struct EncoderBatch {
    pub ids: Tensor,
    pub valid: Tensor,
    pub positions: Tensor,
}

impl EncoderBatch {
    /// Left-pads `seqs` with `pad` so the N query slots are the last N columns of
    /// every row; positions restart at 0 on each row's first real token.
    pub fn new(seqs: &[Vec<u32>], pad: u32, device: Device) -> Result<Self> {
        let l = seqs
            .iter()
            .map(Vec::len)
            .max()
            .ok_or_else(|| Error::Input("no documents to encode".into()))?;
        let b = seqs.len();
        let mut ids = vec![pad as i64; b * l];
        let mut valid = vec![0i64; b * l];
        let mut pos = vec![0i64; b * l];
        for (r, s) in seqs.iter().enumerate() {
            let off = l - s.len();
            for (j, &t) in s.iter().enumerate() {
                ids[r * l + off + j] = t as i64;
                valid[r * l + off + j] = 1;
                pos[r * l + off + j] = j as i64;
            }
        }
        let shape = [b as i64, l as i64];
        let t = |v: Vec<i64>| Tensor::from_slice(&v).view(shape).to_device(device);
        Ok(EncoderBatch {
            ids: t(ids),
            valid: t(valid),
            positions: t(pos),
        })
    }
}

impl C3Model {
    /// Creates the variables (zero/one-initialised) in `vs` for `config`.
    pub fn new(vs: &VarStore, config: &C3Config) -> Self {
        let root = vs.root();
        let enc = &root / "llm1";
        let llm1 = Qwen2Model::new(&enc / "model", &config.encoder);
        let model = Qwen2Model::new(&root / "model", &config.decoder);
        let (n, de, dd) = (
            config.n_latents(),
            config.encoder.hidden_size,
            config.decoder.hidden_size,
        );
        let q = (&root / "model" / "Q").var("weight", &[n as i64, de as i64], Init::Const(0.0));
        let mm_projector = Linear::new(&root / "model" / "mm_projector", de, dd, true);
        let lm_head = if config.decoder.tie_word_embeddings {
            model.embed_tokens.weight.shallow_clone()
        } else {
            lm_head_var(&root, config.decoder.vocab_size, dd, true)
        };
        let llm1_lm_head = (!config.encoder.tie_word_embeddings)
            .then(|| lm_head_var(&enc, config.encoder.vocab_size, de, false));
        C3Model {
            config: config.clone(),
            llm1,
            model,
            q,
            mm_projector,
            lm_head,
            llm1_lm_head,
        }
    }

    /// Number of latent vectors N.
    pub fn n_latents(&self) -> i64 {
        self.config.n_latents() as i64
    }

    /// Encoder latents `[B, N, D_enc]` (after the final norm, before projection).
    pub fn encode(&self, batch: &EncoderBatch) -> Tensor {
        let n = self.n_latents();
        let embeds = self.llm1.embed_tokens.forward(&batch.ids);
        let (b, l, d) = (embeds.size()[0], embeds.size()[1], embeds.size()[2]);
        // The last N columns of every row are the query slots: substitute Q there.
        let q = self
            .q
            .to_kind(embeds.kind())
            .unsqueeze(0)
            .expand([b, n, d], false);
        let embeds = Tensor::cat(&[embeds.narrow(1, 0, l - n), q], 1);
        let mask = attention_mask(&batch.valid, l);
        let hidden = self.llm1.forward(&embeds, &batch.positions, &mask, None);
        hidden.narrow(1, l - n, n)
    }

    /// Projects latents to the decoder width `[B, N, D_dec]`.
    pub fn project(&self, latents: &Tensor) -> Tensor {
        self.mm_projector.forward(latents)
    }

    /// Decoder prompt embeddings `[B, L, D_dec]` with the N slots replaced by `projected`.
    pub fn prompt_embeds(&self, prompt: &DecoderPrompt, projected: &Tensor) -> Tensor {
        let b = projected.size()[0];
        let ids = Tensor::from_slice(&prompt.ids.iter().map(|&i| i as i64).collect::<Vec<_>>())
            .to_device(projected.device())
            .unsqueeze(0)
            .expand([b, -1], false);
        let e = self.model.embed_tokens.forward(&ids);
        let (s, n) = (prompt.latent_start as i64, prompt.n_latents as i64);
        let l = e.size()[1];
        Tensor::cat(
            &[
                e.narrow(1, 0, s),
                projected.to_kind(e.kind()),
                e.narrow(1, s + n, l - s - n),
            ],
            1,
        )
    }

    /// Runs the decoder on `embeds` (appended after what `cache` holds) and
    /// returns the final hidden states `[B, L, D_dec]`.
    pub fn decode_hidden(&self, embeds: &Tensor, cache: &mut KvCache) -> Tensor {
        let (b, l) = (embeds.size()[0], embeds.size()[1]);
        let past = cache.len();
        let dev = embeds.device();
        let positions = (Tensor::arange(l, (Kind::Int64, dev)) + past)
            .unsqueeze(0)
            .expand([b, l], false);
        let valid = Tensor::ones([b, past + l], (Kind::Int64, dev));
        let mask = attention_mask(&valid, l);
        self.model.forward(embeds, &positions, &mask, Some(cache))
    }

    /// Runs the decoder on a whole sequence without a cache (training): positions
    /// 0..L-1, causal. Right padding needs no mask: real tokens never look right.
    pub fn decoder_forward(&self, embeds: &Tensor) -> Tensor {
        let (b, l) = (embeds.size()[0], embeds.size()[1]);
        let dev = embeds.device();
        let positions = Tensor::arange(l, (Kind::Int64, dev))
            .unsqueeze(0)
            .expand([b, l], false);
        let mask = attention_mask(&Tensor::ones([b, l], (Kind::Int64, dev)), l);
        self.model.forward(embeds, &positions, &mask, None)
    }

    /// Logits `[.., vocab]` for hidden states.
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        hidden.matmul(&self.lm_head.to_kind(hidden.kind()).tr())
    }

    /// Embeddings of decoder tokens `[B, L]`.
    pub fn embed_decoder(&self, ids: &Tensor) -> Tensor {
        self.model.embed_tokens.forward(ids)
    }
}

fn lm_head_var(p: &Path, vocab: usize, dim: usize, trainable: bool) -> Tensor {
    let shape = [vocab as i64, dim as i64];
    let p = p / "lm_head";
    if trainable {
        p.var("weight", &shape, Init::Const(0.0))
    } else {
        p.zeros_no_train("weight", &shape)
    }
}
