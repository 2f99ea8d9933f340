//! Random-weight checkpoints in the release layout (`c3 init`): a tiny preset for
//! tests and demos, and the paper's shapes (1.5B encoder + 3B decoder) for scale
//! tests of the exporter and runtime. Values are generated per tensor from
//! (seed, tensor name), so they do not depend on write order, and produced while
//! the file is written, so the 9 GB release-shape preset never sits in RAM.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::checkpoint::{
    DType, SaveOptions, TensorSpec, WriteTensor, decoder_tensors, encoder_tensors_to_write,
    save_checkpoint,
};
use crate::config::{C3Config, C3Fields, Qwen2Config};
use crate::error::{Error, Result};
use crate::tokenizer::{QWEN_TIKTOKEN, TOKENIZER_JSON, write_byte_level_tokenizer};

/// Named shapes `c3 init` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Byte-level vocabulary, a few hundred thousand parameters.
    Tiny,
    /// Qwen2.5-1.5B encoder + Qwen2.5-3B decoder shapes, N = 32, Qwen vocabulary.
    ReleaseShape,
    /// Qwen2.5-0.5B shapes for both LLMs, N = 32, Qwen vocabulary: a model whose
    /// per-step cost is dominated by its weights, as in production, that still runs
    /// in fp32 on a small CPU (latency benchmarks; the weights are random).
    SmallShape,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Preset> {
        match s {
            "tiny" => Some(Preset::Tiny),
            "c3-release-shape" => Some(Preset::ReleaseShape),
            "c3-0.5b-shape" => Some(Preset::SmallShape),
            _ => None,
        }
    }

    /// The configuration this preset writes.
    pub fn config(self) -> C3Config {
        match self {
            Preset::Tiny => C3Config {
                encoder: qwen2(264, 64, 128, 2, 4, 2, 1024, 10_000.0, true),
                // head_dim 32: a multiple of 16, as GroupQueryAttention's rotary needs
                // (the shared-buffer KV cache); Qwen2 models have 64 or 128.
                decoder: qwen2(264, 128, 256, 2, 4, 2, 2048, 1_000_000.0, false),
                c3: c3_fields(4, 64, 259, 260, 261),
            },
            Preset::ReleaseShape => C3Config {
                encoder: qwen2(151_936, 1536, 8960, 28, 12, 2, 32_768, 1_000_000.0, true),
                decoder: qwen2(151_860, 2048, 11_008, 36, 16, 2, 32_768, 1_000_000.0, true),
                c3: c3_fields(32, 1536, 151_857, 151_858, 151_859),
            },
            Preset::SmallShape => C3Config {
                encoder: qwen2(151_936, 896, 4864, 24, 14, 2, 32_768, 1_000_000.0, true),
                decoder: qwen2(151_860, 896, 4864, 24, 14, 2, 32_768, 1_000_000.0, true),
                c3: c3_fields(32, 896, 151_857, 151_858, 151_859),
            },
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn qwen2(
    vocab: usize,
    hidden: usize,
    inter: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    max_pos: usize,
    theta: f64,
    tied: bool,
) -> Qwen2Config {
    let extra: Map<String, Value> = json!({
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
        "hidden_act": "silu", "torch_dtype": "float32"
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    Qwen2Config {
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: inter,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        max_position_embeddings: max_pos,
        rope_theta: theta,
        rms_norm_eps: 1e-6,
        tie_word_embeddings: tied,
        extra,
    }
}

fn c3_fields(n: usize, d_enc: usize, start: u32, end: u32, pad: u32) -> C3Fields {
    C3Fields {
        latent_token_len: n,
        contexts_compression_llm_hidden_size: d_enc,
        im_start_token: start,
        im_end_token: end,
        im_patch_token: pad,
        use_im_start_end: true,
        window_tokens: None,
    }
}

/// Marks a config as a C3 root (model_type "C3") with the given storage dtype.
pub fn stamp_config(cfg: &mut C3Config, dtype: DType) {
    let d = &mut cfg.decoder.extra;
    d.insert("model_type".into(), "C3".into());
    d.insert("architectures".into(), json!(["C3QwenForCausalLM"]));
    d.insert("torch_dtype".into(), dtype.torch_name().into());
    cfg.encoder
        .extra
        .insert("torch_dtype".into(), dtype.torch_name().into());
}

/// Initial value of a parameter, by its role in the architecture.
#[derive(Clone, Copy)]
pub enum Init {
    Normal(f32),
    Ones,
    Zeros,
}

/// The init HF Qwen2 uses: N(0, 0.02) weights, zero biases, unit norms.
pub fn init_for(name: &str) -> Init {
    if name.ends_with("layernorm.weight") || name.ends_with("norm.weight") {
        Init::Ones
    } else if name.ends_with(".bias") {
        Init::Zeros
    } else {
        Init::Normal(0.02)
    }
}

/// Deterministic values for one tensor from (seed, name).
pub fn init_values(seed: u64, spec: &TensorSpec) -> Vec<f32> {
    let n: usize = spec.shape.iter().product();
    match init_for(&spec.name) {
        Init::Ones => vec![1.0; n],
        Init::Zeros => vec![0.0; n],
        Init::Normal(std) => {
            let mut rng = SplitMix64::new(seed ^ fnv1a(spec.name.as_bytes()));
            (0..n).map(|_| rng.normal() * std).collect()
        }
    }
}

/// Writes a random checkpoint for `preset` to `out`.
pub fn init_checkpoint(
    preset: Preset,
    seed: u64,
    dtype: DType,
    out: &Path,
    overwrite: bool,
) -> Result<C3Config> {
    init_checkpoint_with(preset, seed, dtype, out, overwrite, &|_| {})
}

/// Tensors and bytes [`init_checkpoint`] writes for `preset` in `dtype` (for progress).
pub fn checkpoint_size(preset: Preset, dtype: DType) -> (usize, u64) {
    let cfg = preset.config();
    let specs: Vec<TensorSpec> = decoder_tensors(&cfg)
        .into_iter()
        .chain(encoder_tensors_to_write(&cfg.encoder))
        .collect();
    let bytes = specs
        .iter()
        .map(|t| (t.shape.iter().product::<usize>() * dtype.size()) as u64)
        .sum();
    (specs.len(), bytes)
}

/// [`init_checkpoint`], calling `on_tensor(bytes)` as each tensor is written: the
/// release shape takes minutes, and the CLI draws a bar from these.
pub fn init_checkpoint_with(
    preset: Preset,
    seed: u64,
    dtype: DType,
    out: &Path,
    overwrite: bool,
    on_tensor: &(dyn Fn(u64) + Sync),
) -> Result<C3Config> {
    let mut cfg = preset.config();
    stamp_config(&mut cfg, dtype);
    let lazy = |spec: TensorSpec| {
        WriteTensor::lazy(spec.name.clone(), dtype, spec.shape.clone(), move || {
            let bytes = dtype.f32_to_bytes(&init_values(seed, &spec));
            on_tensor(bytes.len() as u64);
            Cow::Owned(bytes)
        })
    };
    let root: Vec<WriteTensor> = decoder_tensors(&cfg).into_iter().map(lazy).collect();
    let llm1: Vec<WriteTensor> = encoder_tensors_to_write(&cfg.encoder)
        .into_iter()
        .map(lazy)
        .collect();
    let tmp_tok;
    let root_files = match preset {
        Preset::Tiny => {
            static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let k = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("c3-tokenizer-{}-{k}.json", std::process::id());
            tmp_tok = TempFile(std::env::temp_dir().join(name));
            write_byte_level_tokenizer(&tmp_tok.0)?;
            vec![(TOKENIZER_JSON.to_string(), tmp_tok.0.clone())]
        }
        Preset::ReleaseShape | Preset::SmallShape => {
            let tk = crate::deps::qwen_tiktoken()?;
            vec![(QWEN_TIKTOKEN.to_string(), tk)]
        }
    };
    let opts = SaveOptions {
        // Shard like HF does for multi-GB checkpoints, so the sharded path is exercised.
        shard_bytes: (preset == Preset::ReleaseShape).then_some(4 << 30),
        root_files,
        overwrite,
    };
    save_checkpoint(out, &cfg, &root, &llm1, &opts)?;
    Ok(cfg)
}

struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: tiny, fast and good enough for initial weights; owning it keeps the
/// values stable across dependency upgrades (a checkpoint seed means the same thing).
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 + 1.0) / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

/// An error for a preset name that does not exist.
pub fn unknown_preset(name: &str) -> Error {
    Error::Input(format!(
        "unknown preset `{name}` (expected tiny, c3-0.5b-shape or c3-release-shape)"
    ))
}
