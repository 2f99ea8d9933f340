//! Command-line arguments shared by `c3 export` and the `c3-export` binary.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Export a C3 checkpoint to ONNX (encoder, KV-cache decoder, token embedding).
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Checkpoint folder in the release layout (root + llm1/).
    pub checkpoint: PathBuf,
    /// Export folder to write (replaced if it holds an older export).
    #[arg(long)]
    pub out: PathBuf,
    /// Weight, activation and KV-cache dtype (norms and softmax run in fp32).
    #[arg(long, value_enum, default_value = "fp32")]
    pub dtype: ExportDtype,
    /// `ort`: ONNX Runtime (may use contrib ops); `tensorrt`: standard ONNX ops only.
    #[arg(long, value_enum, default_value = "ort")]
    pub target: Target,
    /// Weight-only quantization of the decoder's linear layers (MatMulNBits, `--target ort`).
    #[arg(long, value_enum)]
    pub quantize: Option<Quantize>,
    /// Run the exported models in ONNX Runtime and compare with the tch reference
    /// (the `c3` binary's `reference` command); non-zero exit on mismatch.
    #[arg(long)]
    pub verify: bool,
    /// Print a machine-readable summary on stdout.
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
        match self {
            ExportDtype::Fp32 => "fp32",
            ExportDtype::Fp16 => "fp16",
            ExportDtype::Bf16 => "bf16",
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
