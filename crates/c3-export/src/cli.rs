//! Command-line arguments shared by `c3 export` and the `c3-export` binary (feature
//! `cli`): clap's view of [`ExportOptions`], plus `--json`, which only the binaries
//! read. The library itself takes [`ExportOptions`].

use std::path::PathBuf;

use c3_core::DType;
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::options::{ExportOptions, KvCacheChoice, QuantCompute, Quantize, Target};

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
    #[arg(long, default_value = "fp32", value_parser = dtype_parser())]
    pub dtype: DType,
    /// `ort`: ONNX Runtime (may use contrib ops); `tensorrt`: standard ONNX ops only.
    #[arg(long, value_enum, default_value = "ort")]
    pub target: Target,
    /// Decoder KV cache: `shared-buffer` (ONNX Runtime's GroupQueryAttention writing
    /// into one preallocated buffer, no per-step copy; `--target ort`, head_dim a
    /// multiple of 16), `concat` (standard ops, the cache is copied every step), or
    /// `auto` (shared-buffer where it applies, else concat).
    #[arg(long, value_enum, default_value = "auto")]
    pub kv_cache: KvCacheChoice,
    /// Weight-only quantization of the decoder's linear layers (MatMulNBits, `--target ort`).
    #[arg(long, value_enum)]
    pub quantize: Option<Quantize>,
    /// Quantization block along the input dimension (weights per scale; default:
    /// 128 for int8, 32 for int4, chosen by measurement).
    #[arg(long, value_parser = parse_block)]
    pub quant_block: Option<usize>,
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
    /// Export a decoder that takes embeddings only (no `input_ids`): each decode step
    /// then runs `embed_tokens.onnx` first. For engines that refuse the empty
    /// `inputs_embeds` tensor of a one-run decode step.
    #[arg(long)]
    pub decoder_embeds_only: bool,
    /// The task this model was trained to answer after its latents (a question, an
    /// instruction), recorded in the manifest's prompt template and used by every
    /// runtime that loads the export. Default: C3's reconstruction prompt,
    /// "Repeat the text: ".
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Print one JSON object on stdout: the summary, or on failure
    /// `{"error", "kind"}` (kind input|verify|environment = exit code 1|2|3).
    #[arg(long)]
    pub json: bool,
}

impl ExportArgs {
    /// The export these flags ask for.
    pub fn options(&self) -> ExportOptions {
        ExportOptions {
            checkpoint: self.checkpoint.clone(),
            out: self.out.clone(),
            force: self.force,
            dtype: self.dtype,
            target: self.target,
            kv_cache: self.kv_cache,
            quantize: self.quantize,
            quant_block: self.quant_block,
            quant_compute: self.quant_compute,
            keep_lm_head: self.keep_lm_head,
            verify: self.verify,
            allow_nonfinite: self.allow_nonfinite,
            decoder_embeds_only: self.decoder_embeds_only,
            prompt: self.prompt.clone(),
        }
    }
}

impl From<&ExportArgs> for ExportOptions {
    fn from(a: &ExportArgs) -> Self {
        a.options()
    }
}

/// `--dtype`: [`DType`]'s names (fp32, fp16, bf16), listed in `--help` and offered
/// as suggestions on a typo; `DType::parse`'s other spellings are not flags.
pub fn dtype_parser() -> impl TypedValueParser<Value = DType> {
    PossibleValuesParser::new(DType::ALL.map(DType::name))
        .try_map(|s| DType::parse(&s).ok_or_else(|| format!("`{s}` is not fp32, fp16 or bf16")))
}

/// Blocks MatMulNBits takes: powers of two from 16 to 256.
fn parse_block(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(b) if (16..=256).contains(&b) && b.is_power_of_two() => Ok(b),
        _ => Err(format!("`{s}`: expected 16, 32, 64, 128 or 256")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExportArgs,
    }

    /// The flags' defaults and `ExportOptions::new` are written twice: keep them equal.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["c3-export", "ck", "--out", "out"]).unwrap();
        assert_eq!(cli.args.options(), ExportOptions::new("ck", "out"));
    }

    #[test]
    fn dtype_flag_takes_the_core_names_only() {
        let parse = |d: &str| Cli::try_parse_from(["c3-export", "ck", "--out", "o", "--dtype", d]);
        assert_eq!(parse("bf16").unwrap().args.dtype, DType::BF16);
        assert_eq!(parse("fp16").unwrap().args.dtype, DType::F16);
        assert!(
            parse("float16").is_err(),
            "one spelling per dtype on the command line"
        );
    }
}
