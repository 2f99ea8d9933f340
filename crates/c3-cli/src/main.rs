//! `c3`: train, export, compress and reconstruct with C3 models.
//!
//! Every failure ends as one line on stderr (`error: ...`, with its causes) and
//! exit code 1; `--json` output goes to stdout for pipelines.

mod cmd;
mod input;

use clap::{Parser, Subcommand};

/// C3 (Context Cascade Compression) toolchain.
#[derive(Parser)]
#[command(name = "c3", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a random-weight checkpoint in the release layout.
    Init(cmd::init::Args),
    /// Show a checkpoint's configs, parameter counts, dtypes and tokenizer.
    Inspect(cmd::inspect::Args),
    /// Compress a text to latents and reconstruct it (tch reference path).
    Roundtrip(cmd::roundtrip::Args),
    /// Reconstruct many passages; precision by length and compression, error positions.
    Eval(cmd::eval::Args),
    /// Train or fine-tune a C3 model from a recipe (resumes the run if it has checkpoints).
    Train(cmd::train::Args),
    /// Tokenizer utilities.
    #[command(subcommand)]
    Tokenizer(cmd::tokenizer::Command),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("C3_LOG"))
        .with_writer(std::io::stderr)
        .init();
    // A panic is a bug, but the user still gets one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report): {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(a) => cmd::init::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Roundtrip(a) => cmd::roundtrip::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Tokenizer(c) => cmd::tokenizer::run(c),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
