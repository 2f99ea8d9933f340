//! Command-line arguments shared by `c3 export` and the `c3-export` binary.

use std::path::PathBuf;

use c3_core::KvCache;
use clap::{Args, ValueEnum};

/// Export a C3 checkpoint to ONNX (encoder, KV-cache decoder, token embedding).
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Checkpoint folder in the release layout (root + llm1/).
    pub checkpoint: PathBuf,
    /// Export folder to write. Staged beside it and renamed into place when complete
    /// (and verified): a failed export leaves nothing here.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing export at `--out` (a folder that is not an export is
    /// never replaced).
    #[arg(long)]
    pub force: bool,
    /// Weight, activation and KV-cache dtype (norms and softmax run in fp32).
    #[arg(long, value_enum, default_value = "fp32")]
    pub dtype: ExportDtype,
    /// `ort`: ONNX Runtime (may use contrib ops); `tensorrt`: standard ONNX ops only.
    #[arg(long, value_enum, default_value = "ort")]
    pub target: Target,
    /// Decoder KV cache: `shared-buffer` (ONNX Runtime's GroupQueryAttention writing
    /// into one preallocated buffer, no per-step copy; `--target ort`, head_dim a
    /// multiple of 16), `concat` (standard ops, the cache is copied every step), or
    /// `auto` (shared-buffer where it applies, else concat).
    #[arg(long, value_enum, default_value = "auto")]
    pub kv_cache: KvCacheArg,
    /// Weight-only quantization of the decoder's linear layers (MatMulNBits, `--target ort`).
    #[arg(long, value_enum)]
    pub quantize: Option<Quantize>,
    /// Quantization block along the input dimension (weights per scale).
    #[arg(long, default_value_t = crate::quantize::BLOCK, value_parser = parse_block)]
    pub quant_block: usize,
    /// What MatMulNBits computes in on the CPU: `int8` (activations quantized per
    /// block, integer dot products: measured 2-3x faster decode than `fp32` here)
    /// or `fp32` (weights dequantized first). CUDA kernels ignore it.
    #[arg(long, value_enum, default_value = "int8")]
    pub quant_compute: QuantCompute,
    /// Keep the LM head in the export dtype when quantizing (by default it is
    /// quantized with the layers: at Qwen2.5-0.5B shapes it is a quarter of the
    /// decoder's weights, so an unquantized head caps int4's speed-up).
    #[arg(long)]
    pub keep_lm_head: bool,
    /// Run the exported models in ONNX Runtime and compare with the tch reference
    /// (the `c3` binary's `reference` command); non-zero exit on mismatch.
    #[arg(long)]
    pub verify: bool,
    /// Export weights that are NaN, ±Inf or beyond the export dtype's range instead of
    /// refusing the checkpoint. For forensics only: such an export is not fit to ship.
    #[arg(long)]
    pub allow_nonfinite: bool,
    /// Print one JSON object on stdout: the summary, or on failure
    /// `{"error", "kind"}` (kind input|verify|environment = exit code 1|2|3).
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportDtype {
    Fp32,
    Fp16,
    Bf16,
}

impl ExportDtype {
    pub fn name(self) -> &'static str {
        self.core().name()
    }

    /// The dtype as the checkpoint and the manifest name it.
    pub fn core(self) -> c3_core::DType {
        match self {
            ExportDtype::Fp32 => c3_core::DType::F32,
            ExportDtype::Fp16 => c3_core::DType::F16,
            ExportDtype::Bf16 => c3_core::DType::BF16,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
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

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvCacheArg {
    Auto,
    Concat,
    SharedBuffer,
}

impl KvCacheArg {
    /// The flag value as typed (`shared-buffer`).
    pub fn name(self) -> &'static str {
        match self {
            KvCacheArg::Auto => "auto",
            KvCacheArg::Concat => "concat",
            KvCacheArg::SharedBuffer => "shared-buffer",
        }
    }
}

impl ExportArgs {
    /// The weight-only quantization these flags ask for, if any.
    pub fn quant_spec(&self) -> Option<crate::quantize::QuantSpec> {
        self.quantize.map(|q| crate::quantize::QuantSpec {
            bits: q.bits(),
            block: self.quant_block,
            accuracy_level: self.quant_compute.accuracy_level(),
            lm_head: !self.keep_lm_head,
        })
    }

    /// The CLI's defaults (fp32, `--target ort`, `--kv-cache auto`, no verify):
    /// what library callers and tests start from, changing the fields they need.
    pub fn new(checkpoint: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        ExportArgs {
            checkpoint: checkpoint.into(),
            out: out.into(),
            force: false,
            dtype: ExportDtype::Fp32,
            target: Target::Ort,
            kv_cache: KvCacheArg::Auto,
            quantize: None,
            quant_block: crate::quantize::BLOCK,
            quant_compute: QuantCompute::Int8,
            keep_lm_head: false,
            verify: false,
            allow_nonfinite: false,
            json: false,
        }
    }

    /// The decoder's cache contract for a decoder of `head_dim`, or why the requested
    /// one cannot be exported.
    pub fn kv_cache(&self, head_dim: usize) -> anyhow::Result<KvCache> {
        // GroupQueryAttention's own rotary needs head_dim % 16 == 0 (ORT checks it).
        let gqa_fits = head_dim.is_multiple_of(16);
        match (self.kv_cache, self.target) {
            (KvCacheArg::Concat, _) | (KvCacheArg::Auto, Target::Tensorrt) => Ok(KvCache::Concat),
            (KvCacheArg::Auto, Target::Ort) if !gqa_fits => Ok(KvCache::Concat),
            (KvCacheArg::SharedBuffer, Target::Tensorrt) => anyhow::bail!(
                "--kv-cache shared-buffer needs --target ort (GroupQueryAttention is an ONNX Runtime contrib op; TensorRT takes standard ops only)"
            ),
            (KvCacheArg::SharedBuffer, Target::Ort) if !gqa_fits => anyhow::bail!(
                "--kv-cache shared-buffer needs a decoder head_dim that is a multiple of 16 (this one is {head_dim}); use --kv-cache concat"
            ),
            (KvCacheArg::SharedBuffer | KvCacheArg::Auto, Target::Ort) => Ok(KvCache::SharedBuffer),
        }
    }
}

/// MatMulNBits `accuracy_level`: the compute type on the CPU.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
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

/// Blocks MatMulNBits takes: powers of two from 16 to 256.
fn parse_block(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(b) if (16..=256).contains(&b) && b.is_power_of_two() => Ok(b),
        _ => Err(format!("`{s}`: expected 16, 32, 64, 128 or 256")),
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(target: Target, kv_cache: KvCacheArg) -> ExportArgs {
        ExportArgs {
            target,
            kv_cache,
            ..ExportArgs::new("ck", "out")
        }
    }

    #[test]
    fn auto_picks_the_shared_buffer_where_it_applies() {
        let ort = args(Target::Ort, KvCacheArg::Auto);
        assert_eq!(ort.kv_cache(128).unwrap(), KvCache::SharedBuffer);
        assert_eq!(
            ort.kv_cache(24).unwrap(),
            KvCache::Concat,
            "rotary needs % 16"
        );
        let trt = args(Target::Tensorrt, KvCacheArg::Auto);
        assert_eq!(trt.kv_cache(128).unwrap(), KvCache::Concat);
        let concat = args(Target::Ort, KvCacheArg::Concat);
        assert_eq!(concat.kv_cache(128).unwrap(), KvCache::Concat);
    }

    #[test]
    fn an_explicit_shared_buffer_that_cannot_be_built_is_refused() {
        let e = args(Target::Tensorrt, KvCacheArg::SharedBuffer)
            .kv_cache(128)
            .unwrap_err();
        assert!(e.to_string().contains("--target ort"), "{e}");
        let e = args(Target::Ort, KvCacheArg::SharedBuffer)
            .kv_cache(24)
            .unwrap_err();
        assert!(e.to_string().contains("multiple of 16"), "{e}");
    }
}
