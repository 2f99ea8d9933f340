//! `c3`: train, export, compress and reconstruct with C3 models.
//!
//! Every failure ends as one line on stderr (`error: ...`, with its causes) and an
//! exit code by kind: 1 usage or input, 2 verification mismatch, 3 environment
//! ([`exit`]); `--json` output goes to stdout for pipelines, failures included.

mod backend;
mod cmd;
mod exit;
mod input;

use clap::{Parser, Subcommand};

/// C3 (Context Cascade Compression) toolchain.
#[derive(Parser)]
#[command(name = "c3", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// ONNX Runtime library to load (default: $ORT_DYLIB_PATH, beside the binary, its
    /// ../lib, this checkout's .deps, then the system loader path).
    #[arg(long, global = true, value_name = "PATH")]
    ort_lib: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Write a random-weight checkpoint in the release layout.
    Init(cmd::init::Args),
    /// Show a checkpoint's configs, parameter counts, dtypes and tokenizer.
    Inspect(cmd::inspect::Args),
    /// Compress a text to latents and reconstruct it (--model: ONNX Runtime; --checkpoint: tch).
    Roundtrip(cmd::roundtrip::Args),
    /// Export a checkpoint to ONNX: encoder, KV-cache decoder, token embedding, manifest.
    Export(c3_export::ExportArgs),
    /// Compress documents to a latent file (compress once, decode many times).
    Compress(cmd::compress::CompressArgs),
    /// Decode a latent file back to text with the export that made it.
    Decompress(cmd::compress::DecompressArgs),
    /// Latency and throughput of the runtime and the tch reference, in one run.
    Bench(cmd::bench::Args),
    /// Compile an export into TensorRT engine plans (`--dry-run` works without a GPU).
    Build(c3_trt::BuildArgs),
    /// The tch reference's latents, prefill logits and greedy tokens for given ids
    /// (used by `export --verify`).
    #[cfg(feature = "torch")]
    #[command(hide = true)]
    Reference(cmd::reference::Args),
    #[cfg(not(feature = "torch"))]
    #[command(hide = true)]
    Reference(cmd::without_torch::Args),
    /// Reconstruct many passages; precision by length and compression, error positions.
    Eval(cmd::eval::Args),
    /// Train or fine-tune a C3 model from a recipe (resumes the run if it has checkpoints).
    #[cfg(feature = "torch")]
    Train(cmd::train::Args),
    /// Train or fine-tune a C3 model (needs the default build, with libtorch).
    #[cfg(not(feature = "torch"))]
    Train(cmd::without_torch::Args),
    /// Write a Triton Inference Server model repository serving an export (docs/triton.md).
    Triton(cmd::triton::Args),
    /// Tokenizer utilities.
    #[command(subcommand)]
    Tokenizer(cmd::tokenizer::Command),
}

fn main() {
    // Warnings by default: the libraries report through `tracing` what the user must
    // see (e.g. the runtime running on the CPU under --allow-fallback).
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
        .with_env_var("C3_LOG")
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in logs and pipelines, which now see warnings by default.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A panic is a bug, but the user still gets one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report): {info}");
    }));
    let cli = Cli::try_parse().unwrap_or_else(|e| exit::usage_error(e));
    if let Some(p) = cli.ort_lib {
        c3_onnx::ort_env::set_dylib_path(p);
    }
    let result = match cli.command {
        Command::Init(a) => cmd::init::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Roundtrip(a) => cmd::roundtrip::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Compress(a) => cmd::compress::compress(a),
        Command::Decompress(a) => cmd::compress::decompress(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Build(a) => cmd::build::run(a),
        #[cfg(feature = "torch")]
        Command::Reference(a) => cmd::reference::run(a),
        #[cfg(feature = "torch")]
        Command::Train(a) => cmd::train::run(a),
        #[cfg(not(feature = "torch"))]
        Command::Reference(a) => cmd::without_torch::run("reference", a),
        #[cfg(not(feature = "torch"))]
        Command::Train(a) => cmd::without_torch::run("train", a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Triton(a) => cmd::triton::run(a),
        Command::Tokenizer(c) => cmd::tokenizer::run(c),
    };
    if let Err(e) = result {
        std::process::exit(exit::fail(&e));
    }
}
