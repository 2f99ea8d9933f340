//! `c3 eval`: reconstruct many passages and report precision by text length and
//! compression ratio (the paper's Table 1/2 shape) and where errors fall.
//! Per-passage results are appended to `OUT/results.jsonl` as they finish, so a
//! killed evaluation resumes where it stopped. Two PNG plots are drawn beside the
//! report (crate c3-plot).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use c3_core::eval::{PassageResult, Report, parse_buckets};
use c3_core::{C3Tokenizer, deps};
use c3_train::{PassageSet, Recipe};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: crate::backend::ModelArgs,
    /// Evaluate the held-out split of this training recipe (never trained on).
    #[arg(long, conflicts_with = "corpus")]
    recipe: Option<PathBuf>,
    /// Corpus files/directories, cut into passages of --min-tokens..--max-tokens model tokens.
    corpus: Vec<PathBuf>,
    #[arg(long, default_value_t = 16)]
    min_tokens: usize,
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Whole-document mode: every corpus file is one document, windowed and joined;
    /// precision and error positions are over the full document.
    #[arg(long, conflicts_with = "recipe")]
    documents: bool,
    /// Window length in model tokens (default: the model's own).
    #[arg(long)]
    window: Option<usize>,
    /// Upper bound on generated tokens per window (default: each window's own length
    /// plus a quarter and 8, so a passage's budget never depends on its neighbours).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Evaluate at most this many passages (chosen by seed).
    #[arg(long, default_value_t = 256)]
    limit: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Buckets of text length in Qwen tokens, LO-HI:STEP.
    #[arg(long, default_value = "600-1300:100")]
    buckets: String,
    /// Output folder: results.jsonl (per passage, resumable), report.md, report.json,
    /// precision_vs_compression.png, error_by_position.png.
    #[arg(long, default_value = "runs/eval")]
    out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Resuming is only right for the same model on the same passages: `OUT/results.meta.json`
/// records both, and a results file from another model or corpus is refused instead
/// of being silently reported as this one's.
fn check_resume(
    out: &std::path::Path,
    model: &str,
    passages: &[c3_train::Passage],
    have_results: bool,
) -> Result<()> {
    let mut text = String::new();
    for p in passages {
        text.push_str(&p.text);
        text.push('\u{0}');
    }
    let meta = serde_json::json!({
        "model": model,
        "passages_sha256": c3_core::manifest::sha256_hex(text.as_bytes()),
    });
    let path = out.join("results.meta.json");
    if have_results {
        let old: Option<serde_json::Value> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if old.as_ref() != Some(&meta) {
            bail!(
                "{}: results.jsonl there is from another model or passage set (see results.meta.json); use another --out or delete it",
                out.display()
            );
        }
        return Ok(());
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&meta)?)
        .with_context(|| path.display().to_string())
}

/// Whole documents: up to `limit` corpus files (chosen by seed), each one passage.
fn whole_documents(
    paths: &[PathBuf],
    tok: &C3Tokenizer,
    limit: usize,
    seed: u64,
) -> Result<Vec<c3_train::Passage>> {
    let exts: Vec<String> = c3_core::corpus::DEFAULT_EXTENSIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let files = c3_core::corpus::list_files(paths, &exts)?;
    let docs = c3_core::corpus::read_documents(&files)?;
    let order = c3_train::permutation(docs.len(), seed ^ 0xd0c5);
    let mut out = Vec::new();
    for &i in order.iter().take(limit) {
        let text = docs[i].text.trim().to_string();
        out.push(c3_train::Passage {
            ids: tok.encode(&text)?,
            text,
        });
    }
    if out.is_empty() {
        bail!("no documents under {paths:?}");
    }
    Ok(out)
}

pub fn run(a: Args) -> Result<()> {
    if a.max_new_tokens == Some(0) {
        bail!("--max-new-tokens must be at least 1");
    }
    let buckets = parse_buckets(&a.buckets).map_err(anyhow::Error::msg)?;
    let cascade = a.model.open(a.window)?;
    let tok = cascade.tokenizer();
    let passages = match &a.recipe {
        Some(r) => {
            let r = Recipe::load(r)?;
            PassageSet::build(&r.data, tok, r.seed)?.held_out
        }
        None if a.corpus.is_empty() => bail!("give --recipe or corpus paths"),
        None if a.documents => whole_documents(&a.corpus, tok, a.limit, a.seed)?,
        None => {
            let mut d = Recipe::default().data;
            (d.paths, d.min_tokens, d.max_tokens, d.held_out) = (
                a.corpus.clone(),
                a.min_tokens,
                a.max_tokens,
                a.limit.min(1 << 20),
            );
            PassageSet::build(&d, tok, a.seed)?.held_out
        }
    };
    let passages: Vec<_> = passages.into_iter().take(a.limit).collect();
    let qwen = C3Tokenizer::from_tiktoken(&deps::qwen_tiktoken()?)?;
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let results_path = a.out.join("results.jsonl");
    let mut results: Vec<PassageResult> = std::fs::read_to_string(&results_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    check_resume(&a.out, &a.model.identity()?, &passages, !results.is_empty())?;
    let done: HashSet<usize> = results.iter().map(|r| r.id).collect();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results_path)?;
    let bar = ProgressBar::new(passages.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} passages [{elapsed_precise} < {eta_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(done.len() as u64);
    let n = cascade.n_latents();
    let todo: Vec<(usize, &c3_train::Passage)> = passages
        .iter()
        .enumerate()
        .filter(|(i, _)| !done.contains(i))
        .collect();
    let cfg = cascade.generation().clone();
    for chunk in todo.chunks(16) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|(_, p)| p.ids.clone()).collect();
        let back = (cascade.reconstruct_documents(&ids, &cfg, a.max_new_tokens))
            .map_err(crate::backend::cascade_error)?;
        let (outs, windows) = (back.docs, back.reports);
        for (k, ((i, p), out_ids)) in chunk.iter().zip(outs).enumerate() {
            let out = tok.decode(&out_ids)?;
            let mine: Vec<_> = windows.iter().filter(|w| w.window.doc == k).collect();
            let mut r = PassageResult::score(
                *i,
                format!("passage {i}"),
                &p.text,
                &out,
                p.ids.len(),
                qwen.encode(&p.text)?.len(),
                n * mine.len(),
            );
            // Where each window's own tokens begin, as a fraction of the document.
            r.window_starts = mine
                .iter()
                .map(|w| (w.window.start + w.window.skip) as f64 / p.ids.len() as f64)
                .collect();
            r.windows_short = mine.iter().filter(|w| w.short).count();
            r.windows_at_limit = mine
                .iter()
                .filter(|w| w.end == c3_core::window::WindowEnd::Limit)
                .count();
            writeln!(file, "{}", serde_json::to_string(&r)?)?;
            results.push(r);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    results.sort_by_key(|r| r.id);
    let report = Report::build(&results, &buckets);
    let title = format!(
        "{} — {} passages, N = {n}",
        a.model.path().display(),
        results.len()
    );
    let md = report.to_markdown(&title);
    std::fs::write(a.out.join("report.md"), &md)?;
    std::fs::write(
        a.out.join("report.json"),
        serde_json::to_string_pretty(&serde_json::json!({"report": report, "passages": results}))?,
    )?;
    let plots = c3_plot::write_report_plots(&report, n, &a.out)?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{md}");
        for p in plots {
            println!("plot: {}", p.display());
        }
    }
    Ok(())
}
