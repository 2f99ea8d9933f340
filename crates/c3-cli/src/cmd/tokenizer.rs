//! `c3 tokenizer train`: a small byte-level BPE for from-scratch models.

use std::path::PathBuf;

use anyhow::Result;
use c3_core::corpus::{DEFAULT_EXTENSIONS, list_files, read_documents};
use c3_core::tokenizer::train_bpe;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Train a byte-level BPE (Qwen pre-tokenizer, NFC) with the C3 special tokens reserved.
    Train(TrainArgs),
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Corpus files or directories (.txt/.md/.rst/.pod/.jsonl).
    #[arg(required = true)]
    corpus: Vec<PathBuf>,
    /// Total vocabulary size (bytes and specials included).
    #[arg(long, default_value_t = 4096)]
    vocab_size: usize,
    /// Minimum pair frequency for a merge.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    /// Output tokenizer.json.
    #[arg(long, short)]
    out: PathBuf,
}

pub fn run(c: Command) -> Result<()> {
    let Command::Train(a) = c;
    let exts: Vec<String> = DEFAULT_EXTENSIONS.iter().map(|s| s.to_string()).collect();
    let docs = read_documents(&list_files(&a.corpus, &exts)?)?;
    if docs.is_empty() {
        anyhow::bail!("no documents found under {:?}", a.corpus);
    }
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let n = docs.len();
    train_bpe(
        docs.into_iter().map(|d| d.text),
        a.vocab_size,
        a.min_frequency,
        &a.out,
    )?;
    eprintln!(
        "trained a {}-id BPE on {n} documents: {}",
        a.vocab_size,
        a.out.display()
    );
    Ok(())
}
