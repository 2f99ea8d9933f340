//! What an export is asked to do, as plain types: library callers (tests, the
//! server, Python) build an [`ExportOptions`] without any command-line parser; the
//! flags that fill it live in [`crate::cli`] (feature `cli`).

use std::path::PathBuf;

use c3_core::{DType, KvCache};

use crate::error::{ExportError, Result};
use crate::quantize::QuantSpec;

/// One export: the checkpoint, where to write, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Checkpoint folder in the release layout (root + llm1/).
    pub checkpoint: PathBuf,
    /// Export folder to write (staged beside it, renamed into place when complete).
    pub out: PathBuf,
    /// Replace an existing export at `out` (never a folder that is not an export).
    pub force: bool,
    /// Weight, activation and KV-cache dtype (norms and softmax run in fp32).
    pub dtype: DType,
    pub target: Target,
    pub kv_cache: KvCacheChoice,
    /// Weight-only quantization of the decoder's linear layers, if any.
    pub quantize: Option<Quantize>,
    /// Quantization block along the input dimension (16..=256, a power of two, as
    /// the CLI checks); `None`: [`Quantize::default_block`].
    pub quant_block: Option<usize>,
    pub quant_compute: QuantCompute,
    /// Keep the LM head in the export dtype when quantizing.
    pub keep_lm_head: bool,
    /// Compare the export with the tch reference (`c3 reference`) before publishing.
    pub verify: bool,
    /// Export NaN, ±Inf or out-of-range weights instead of refusing (forensics only).
    pub allow_nonfinite: bool,
    /// A decoder without `input_ids` (embeddings only; two runs per decode step), for
    /// engines that refuse the empty `inputs_embeds` of a one-run step.
    pub decoder_embeds_only: bool,
    /// The task the model was trained to answer after its latents, recorded in the
    /// manifest's prompt template; `None`: the release's reconstruction prompt.
    pub prompt: Option<String>,
}

impl ExportOptions {
    /// The CLI's defaults (fp32, target ort, kv cache auto, no quantization, no
    /// verify): what callers start from, changing the fields they need.
    pub fn new(checkpoint: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        ExportOptions {
            checkpoint: checkpoint.into(),
            out: out.into(),
            force: false,
            dtype: DType::F32,
            target: Target::Ort,
            kv_cache: KvCacheChoice::Auto,
            quantize: None,
            quant_block: None,
            quant_compute: QuantCompute::Int8,
            keep_lm_head: false,
            verify: false,
            allow_nonfinite: false,
            decoder_embeds_only: false,
            prompt: None,
        }
    }

    /// The weight-only quantization asked for, if any.
    pub fn quant_spec(&self) -> Option<QuantSpec> {
        self.quantize.map(|q| QuantSpec {
            bits: q.bits(),
            block: self.quant_block.unwrap_or(q.default_block()),
            accuracy_level: self.quant_compute.accuracy_level(),
            lm_head: !self.keep_lm_head,
        })
    }

    /// Whether the encoder's attention is ONNX Runtime's GroupQueryAttention (no
    /// `[heads, L, L]` scores in memory): `--target ort`, where its rotary takes the
    /// encoder's `head_dim` (a multiple of 16); otherwise standard ops.
    pub fn fused_encoder_attention(&self, head_dim: usize) -> bool {
        self.target == Target::Ort && gqa_rotary_fits(head_dim)
    }

    /// The decoder's cache contract for a decoder of `head_dim`, or why the requested
    /// one cannot be exported.
    pub fn kv_cache(&self, head_dim: usize) -> Result<KvCache> {
        let gqa_fits = gqa_rotary_fits(head_dim);
        match (self.kv_cache, self.target) {
            (KvCacheChoice::Concat, _) | (KvCacheChoice::Auto, Target::Tensorrt) => {
                Ok(KvCache::Concat)
            }
            (KvCacheChoice::Auto, Target::Ort) if !gqa_fits => Ok(KvCache::Concat),
            (KvCacheChoice::SharedBuffer, Target::Tensorrt) => Err(ExportError::input(
                "--kv-cache shared-buffer needs --target ort (GroupQueryAttention is an ONNX Runtime contrib op; TensorRT takes standard ops only)",
            )),
            (KvCacheChoice::SharedBuffer, Target::Ort) if !gqa_fits => {
                Err(ExportError::input(format!(
                    "--kv-cache shared-buffer needs a decoder head_dim that is a multiple of 16 (this one is {head_dim}); use --kv-cache concat"
                )))
            }
            (KvCacheChoice::SharedBuffer | KvCacheChoice::Auto, Target::Ort) => {
                Ok(KvCache::SharedBuffer)
            }
        }
    }
}

/// Which runtime the graphs are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Target {
    // No `///` on variants: clap would print them as per-value help, changing `--help`.
    Ort,
    Tensorrt,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Ort => "ort",
            Target::Tensorrt => "tensorrt",
        }
    }
}

/// The decoder KV cache asked for; [`ExportOptions::kv_cache`] resolves it to the
/// [`KvCache`] contract the export gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum KvCacheChoice {
    Auto,
    Concat,
    SharedBuffer,
}

impl KvCacheChoice {
    /// The flag value as typed (`shared-buffer`), as the manifest records it.
    pub fn name(self) -> &'static str {
        match self {
            KvCacheChoice::Auto => "auto",
            KvCacheChoice::Concat => "concat",
            KvCacheChoice::SharedBuffer => "shared-buffer",
        }
    }
}

/// GroupQueryAttention's own rotary needs head_dim % 16 == 0 (ONNX Runtime checks it).
fn gqa_rotary_fits(head_dim: usize) -> bool {
    head_dim.is_multiple_of(16)
}

/// Weight-only quantization (MatMulNBits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Quantize {
    Int8,
    Int4,
}

impl Quantize {
    pub fn name(self) -> &'static str {
        match self {
            Quantize::Int8 => "int8",
            Quantize::Int4 => "int4",
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            Quantize::Int8 => 8,
            Quantize::Int4 => 4,
        }
    }

    /// Weights per scale unless `--quant-block` says otherwise, from measurements
    /// (BENCHMARKS.md, issue 15 third pass) on a Qwen2.5-0.5B-shaped decoder and on
    /// the trained c3-small. int8 takes 128: its decode step is 14% faster than with
    /// 32 (fewer scale bytes and scale steps), at the same reconstruction. int4 keeps
    /// 32: at 128 its reconstruction of c3-small fell from 99.9% to 98.2% char
    /// precision.
    pub fn default_block(self) -> usize {
        match self {
            Quantize::Int8 => 128,
            Quantize::Int4 => 32,
        }
    }
}

/// MatMulNBits `accuracy_level`: the compute type on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum QuantCompute {
    Fp32,
    Int8,
}

impl QuantCompute {
    pub fn name(self) -> &'static str {
        match self {
            QuantCompute::Fp32 => "fp32",
            QuantCompute::Int8 => "int8",
        }
    }

    /// ONNX Runtime's `accuracy_level` (1 = fp32, 4 = int8).
    pub fn accuracy_level(self) -> i64 {
        match self {
            QuantCompute::Fp32 => 1,
            QuantCompute::Int8 => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(target: Target, kv_cache: KvCacheChoice) -> ExportOptions {
        ExportOptions {
            target,
            kv_cache,
            ..ExportOptions::new("ck", "out")
        }
    }

    #[test]
    fn auto_picks_the_shared_buffer_where_it_applies() {
        let ort = opts(Target::Ort, KvCacheChoice::Auto);
        assert_eq!(ort.kv_cache(128).unwrap(), KvCache::SharedBuffer);
        assert_eq!(
            ort.kv_cache(24).unwrap(),
            KvCache::Concat,
            "rotary needs % 16"
        );
        let trt = opts(Target::Tensorrt, KvCacheChoice::Auto);
        assert_eq!(trt.kv_cache(128).unwrap(), KvCache::Concat);
        let concat = opts(Target::Ort, KvCacheChoice::Concat);
        assert_eq!(concat.kv_cache(128).unwrap(), KvCache::Concat);
    }

    #[test]
    fn an_explicit_shared_buffer_that_cannot_be_built_is_refused() {
        let e = opts(Target::Tensorrt, KvCacheChoice::SharedBuffer)
            .kv_cache(128)
            .unwrap_err();
        assert!(e.to_string().contains("--target ort"), "{e}");
        let e = opts(Target::Ort, KvCacheChoice::SharedBuffer)
            .kv_cache(24)
            .unwrap_err();
        assert!(e.to_string().contains("multiple of 16"), "{e}");
    }
}
