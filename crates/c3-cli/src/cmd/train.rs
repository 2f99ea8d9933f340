//! `c3 train --config RECIPE.toml`: trains (or resumes) a run, with a progress
//! bar, held-out evaluations, and Ctrl-C that saves a checkpoint and exits 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use c3_train::{Event, Outcome, Recipe, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    /// Recipe (TOML); see `models/c3-tiny.recipe.toml` for every key.
    #[arg(long)]
    config: PathBuf,
    /// Override `schedule.total_steps`.
    #[arg(long)]
    steps: Option<usize>,
    /// Override the run folder (`out_dir`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override libtorch's thread count.
    #[arg(long)]
    threads: Option<usize>,
    /// Override the recipe's `device` (auto, cpu, cuda, cuda:N).
    #[arg(long)]
    device: Option<String>,
    /// Print events as JSON lines instead of a progress bar.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let mut recipe = Recipe::load(&a.config)?;
    if let Some(s) = a.steps {
        recipe.schedule.total_steps = s;
    }
    if let Some(o) = a.out {
        recipe.out_dir = Some(o);
    }
    if let Some(d) = a.device {
        recipe.device = d;
    }
    if let Some(t) = a.threads {
        recipe.threads = t;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    // First Ctrl-C: finish the current step, save, exit. Second: exit at once.
    ctrlc::set_handler(move || {
        if s2.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort)");
    })
    .context("installing the Ctrl-C handler")?;
    let mut trainer = Trainer::new(recipe)?;
    let bar = ProgressBar::new(trainer.recipe.schedule.total_steps as u64);
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let json = a.json;
    let mut on = |e: Event| {
        if json {
            println!("{}", event_json(&e));
            return;
        }
        match e {
            Event::Started {
                step,
                total,
                train,
                held_out,
                params,
                resumed_from,
            } => {
                bar.set_position(step);
                bar.set_length(total);
                let from = resumed_from
                    .map(|p| format!(", resumed from {}", p.display()))
                    .unwrap_or_default();
                say(
                    &bar,
                    format!(
                        "{:.2}M trainable parameters, {train} train / {held_out} held-out passages{from}",
                        params as f64 / 1e6
                    ),
                );
            }
            Event::Step {
                step,
                loss,
                lr,
                tokens_per_s,
                ..
            } => {
                bar.set_position(step);
                bar.set_message(format!(
                    "loss {loss:.4}  lr {lr:.2e}  {tokens_per_s:.0} tok/s"
                ));
            }
            Event::Eval {
                step,
                char_precision,
                word_precision,
                exact,
                example,
            } => {
                say(
                    &bar,
                    format!(
                        "step {step}: held-out char precision {:.1}%, word precision {:.1}%, exact {:.1}%\n  ref: {}\n  out: {}",
                        100.0 * char_precision,
                        100.0 * word_precision,
                        100.0 * exact,
                        clip(&example.0),
                        clip(&example.1)
                    ),
                );
            }
            Event::Saved { step, path } => {
                say(&bar, format!("step {step}: saved {}", path.display()))
            }
        }
    };
    let outcome = trainer.run(&stop, &mut on)?;
    bar.finish_and_clear();
    match outcome {
        Outcome::Finished { step } => eprintln!("finished at step {step}"),
        Outcome::Interrupted { step } => {
            eprintln!("interrupted: saved at step {step}; run the same command to resume")
        }
    }
    Ok(())
}

/// Prints above the bar, or plainly to stderr when the bar is hidden (not a
/// terminal: nohup logs, CI), so a background run's log still shows evals and saves.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn clip(s: &str) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() > 100 {
        one_line.chars().take(100).collect::<String>() + "…"
    } else {
        one_line
    }
}

fn event_json(e: &Event) -> serde_json::Value {
    use serde_json::json;
    match e {
        Event::Started {
            step,
            total,
            train,
            held_out,
            params,
            resumed_from,
        } => {
            json!({"event": "started", "step": step, "total": total, "train": train, "held_out": held_out, "params": params, "resumed_from": resumed_from})
        }
        Event::Step {
            step,
            loss,
            lr,
            grad_norm,
            tokens_per_s,
        } => {
            json!({"event": "step", "step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens_per_s})
        }
        Event::Eval {
            step,
            char_precision,
            word_precision,
            exact,
            ..
        } => {
            json!({"event": "eval", "step": step, "char_precision": char_precision, "word_precision": word_precision, "exact": exact})
        }
        Event::Saved { step, path } => json!({"event": "saved", "step": step, "path": path}),
    }
}
