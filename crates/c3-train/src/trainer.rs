//! The training loop: micro-batches with accumulation, clipping, the schedule,
//! periodic held-out evaluation and checkpoints, and a clean stop on request
//! (Ctrl-C) that saves before returning.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use c3_core::checkpoint::TensorSpec;
use c3_core::metrics::{char_precision, word_precision};
use c3_core::presets::{SplitMix64, init_values};
use c3_core::{C3Config, C3Tokenizer, Checkpoint, DecoderPrompt, GenerationConfig, PromptTemplate};
use c3_torch::tch::nn::VarStore;
use c3_torch::tch::{self, Device, Kind, Reduction, Tensor};
use c3_torch::{C3Model, EncoderBatch, generate, load_model};

use crate::batch::{Batch, make_batch};
use crate::data::{EpochCache, PassageSet};
use crate::error::{Error, Result};
use crate::optim::{AdamW, lr_at};
use crate::recipe::Recipe;
use crate::state;

/// Progress reported to the caller (the CLI draws bars from these).
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        step: u64,
        total: u64,
        train: usize,
        held_out: usize,
        params: i64,
        resumed_from: Option<PathBuf>,
    },
    Step {
        step: u64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens_per_s: f64,
    },
    Eval {
        step: u64,
        char_precision: f64,
        word_precision: f64,
        exact: f64,
        example: (String, String),
    },
    Saved {
        step: u64,
        path: PathBuf,
    },
}

/// Held-out reconstruction during training: means over the passages evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub char_precision: f64,
    pub word_precision: f64,
    /// Share of passages reconstructed exactly.
    pub exact: f64,
    /// The first passage and its reconstruction.
    pub example: (String, String),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished { step: u64 },
    Interrupted { step: u64 },
}

/// A training run.
pub struct Trainer {
    pub recipe: Recipe,
    pub vs: VarStore,
    pub model: C3Model,
    pub tokenizer: C3Tokenizer,
    tokenizer_file: PathBuf,
    prompt: DecoderPrompt,
    pub data: PassageSet,
    pub opt: AdamW,
    out: PathBuf,
    resumed_from: Option<PathBuf>,
    epoch: EpochCache,
}

fn device_of(recipe: &Recipe) -> Result<Device> {
    c3_torch::parse_device(&recipe.device)
        .map_err(|e| Error::Input(format!("recipe `device`: {e}")))
}

/// The C3 config of a from-scratch model: shapes from the recipe, vocabulary and
/// special ids from the tokenizer.
fn scratch_config(r: &Recipe, tok: &C3Tokenizer) -> C3Config {
    let shape = |s: &crate::recipe::ShapeRecipe| {
        let mut q = c3_core::presets::Preset::Tiny.config().encoder;
        q.vocab_size = tok.vocab_size();
        q.hidden_size = s.hidden_size;
        q.intermediate_size = s.intermediate_size;
        q.num_hidden_layers = s.num_hidden_layers;
        q.num_attention_heads = s.num_attention_heads;
        q.num_key_value_heads = s.num_key_value_heads;
        q.max_position_embeddings = s.max_position_embeddings;
        q.rope_theta = s.rope_theta;
        q.tie_word_embeddings = s.tie_word_embeddings;
        q
    };
    let sp = tok.specials();
    let encoder = shape(&r.model.encoder);
    C3Config {
        decoder: shape(&r.model.decoder),
        c3: c3_core::C3Fields {
            latent_token_len: r.model.latent_tokens,
            contexts_compression_llm_hidden_size: encoder.hidden_size,
            im_start_token: sp.img_start,
            im_end_token: sp.img_end,
            im_patch_token: sp.img_pad,
            use_im_start_end: true,
            // Fixed-length passages: the model only learns windows of that length.
            window_tokens: (r.data.min_tokens == r.data.max_tokens).then_some(r.data.max_tokens),
        },
        encoder,
    }
}

fn is_latent_path(name: &str) -> bool {
    name.starts_with("model.Q.") || name.starts_with("model.mm_projector.")
}

impl Trainer {
    /// Resumes the latest checkpoint in the run folder, or starts from the
    /// recipe's init (a checkpoint or scratch).
    pub fn new(recipe: Recipe) -> Result<Self> {
        if recipe.threads > 0 {
            tch::set_num_threads(recipe.threads as i32);
        }
        let device = device_of(&recipe)?;
        let out = recipe.out_dir();
        let latest = state::list(&out)?.pop().map(|(_, p)| p);
        let (init_dir, tokenizer_file) = match (&latest, recipe.model.init.as_str()) {
            // Checkpoints rotate (keep_last), so the resumed-from folder will be deleted:
            // keep the run's tokenizer beside the checkpoints, not inside one of them.
            (Some(dir), _) => (Some(dir.clone()), stable_copy(&tokenizer_in(dir)?, &out)?),
            (None, "scratch") => (None, recipe.model.tokenizer.clone().unwrap_or_default()),
            (None, path) => (Some(PathBuf::from(path)), tokenizer_in(Path::new(path))?),
        };
        let tokenizer = C3Tokenizer::from_file(&tokenizer_file)?;
        let (vs, model) = match &init_dir {
            Some(dir) => {
                let ck = Checkpoint::open(dir)?;
                tokenizer
                    .specials()
                    .check_config(&ck.config, &tokenizer_file)?;
                load_model(&ck, device, Kind::Float)?
            }
            None => {
                let cfg = scratch_config(&recipe, &tokenizer);
                let vs = VarStore::new(device);
                let model = C3Model::new(&vs, &cfg);
                init_scratch(&vs, recipe.seed);
                (vs, model)
            }
        };
        let prompt = DecoderPrompt::build(
            &tokenizer,
            model.config.n_latents(),
            &PromptTemplate::default(),
        )?;
        let data = PassageSet::build(&recipe.data, &tokenizer, recipe.seed)?;
        let mut opt = AdamW::new(
            vs.variables().into_iter().collect(),
            &recipe.optim,
            is_latent_path,
        );
        if let Some(dir) = &latest {
            state::load_optimizer(dir, &mut opt)?;
            truncate_metrics(&out.join("metrics.jsonl"), opt.step)?;
        }
        Ok(Trainer {
            recipe,
            vs,
            model,
            tokenizer,
            tokenizer_file,
            prompt,
            data,
            opt,
            out,
            resumed_from: latest,
            epoch: EpochCache::default(),
        })
    }

    /// The decoder prompt every sample is trained with.
    pub fn prompt(&self) -> &DecoderPrompt {
        &self.prompt
    }

    /// Optimizer steps taken so far.
    pub fn step(&self) -> u64 {
        self.opt.step
    }

    fn batch(&mut self, step: u64, micro: usize) -> Result<Batch> {
        let o = &self.recipe.optim;
        let first = (step * o.grad_accum as u64 + micro as u64) * o.batch_size as u64;
        let idx: Vec<usize> = (0..o.batch_size as u64)
            .map(|i| {
                self.data
                    .sample_index(self.recipe.seed, first + i, &mut self.epoch)
            })
            .collect();
        let ps: Vec<&[u32]> = idx
            .iter()
            .map(|&i| self.data.train[i].ids.as_slice())
            .collect();
        let mut rng = SplitMix64::new(self.recipe.seed ^ first.wrapping_mul(0xa076_1d64_78bd_642f));
        make_batch(
            &ps,
            &self.prompt,
            self.tokenizer.specials(),
            self.recipe.data.word_dropout,
            &mut rng,
            self.vs.device(),
        )
    }

    /// Mean cross-entropy over the batch's supervised tokens.
    pub fn loss(&self, b: &Batch) -> Tensor {
        let m = &self.model;
        let projected = m.project(&m.encode(&b.encoder));
        let prompt = m.prompt_embeds(&self.prompt, &projected);
        let a = b.labels.size()[1];
        let answer = m.embed_decoder(&b.answer_inputs.narrow(1, 1, a - 1));
        let hidden = m.decoder_forward(&Tensor::cat(&[prompt, answer], 1));
        let lp = self.prompt.ids.len() as i64;
        let logits = m.logits(&hidden.narrow(1, lp - 1, a));
        let v = logits.size()[2];
        logits
            .view([-1, v])
            .to_kind(Kind::Float)
            .cross_entropy_loss::<Tensor>(&b.labels.view([-1]), None, Reduction::Mean, -100, 0.0)
    }

    /// One optimizer step (all micro-batches); returns (loss, grad norm, text tokens).
    fn train_step(&mut self) -> Result<(f64, f64, usize)> {
        let step = self.opt.step;
        let accum = self.recipe.optim.grad_accum;
        let bf16 = match self.recipe.optim.precision.as_str() {
            "bf16" => true,
            "auto" => self.vs.device().is_cuda(),
            _ => false,
        };
        let (mut total, mut tokens) = (0.0, 0);
        for micro in 0..accum {
            let b = self.batch(step, micro)?;
            tokens += b.n_label_tokens;
            let loss = tch::autocast(bf16, || self.loss(&b)) / accum as f64;
            loss.backward();
            total += loss.double_value(&[]);
        }
        let norm = self.opt.clip_grads();
        let lr = lr_at(step as usize, self.recipe.optim.lr, &self.recipe.schedule);
        self.opt.step(lr);
        Ok((total, norm, tokens))
    }

    /// How much the decoder reads the latents: held-out loss with each passage's
    /// own latents, and with the latents of another passage of the batch (rows
    /// rotated by one). A decoder that ignores the latents shows no gap; one that
    /// copies through them shows a large one. Returns (own, swapped), or None
    /// when fewer than two held-out passages exist (nothing to swap with).
    pub fn latent_gap(&self, n: usize) -> Result<Option<(f64, f64)>> {
        let ps: Vec<&[u32]> = self
            .data
            .held_out
            .iter()
            .take(n)
            .map(|p| p.ids.as_slice())
            .collect();
        if ps.len() < 2 {
            return Ok(None);
        }
        let mut rng = SplitMix64::new(self.recipe.seed);
        let b = make_batch(
            &ps,
            &self.prompt,
            self.tokenizer.specials(),
            0.0,
            &mut rng,
            self.vs.device(),
        )?;
        let own = tch::no_grad(|| self.loss(&b)).double_value(&[]);
        let k = ps.len() as i64;
        let rot = Tensor::arange(k, (Kind::Int64, self.vs.device())).roll([1], [0]);
        let enc = &b.encoder;
        // Rotating whole encoder rows keeps each row's padding consistent.
        let swapped_encoder = EncoderBatch {
            ids: enc.ids.index_select(0, &rot),
            valid: enc.valid.index_select(0, &rot),
            positions: enc.positions.index_select(0, &rot),
        };
        let swapped = Batch {
            encoder: swapped_encoder,
            answer_inputs: b.answer_inputs.shallow_clone(),
            labels: b.labels.shallow_clone(),
            n_label_tokens: b.n_label_tokens,
        };
        let other = tch::no_grad(|| self.loss(&swapped)).double_value(&[]);
        Ok(Some((own, other)))
    }

    /// Greedy reconstruction of the first `n` held-out passages.
    pub fn evaluate(&self, n: usize) -> Result<Evaluation> {
        let ps: Vec<_> = self.data.held_out.iter().take(n).collect();
        let max_len = ps.iter().map(|p| p.ids.len()).max().unwrap_or(1);
        let cfg = GenerationConfig {
            max_new_tokens: max_len + 8,
            no_repeat_ngram_size: 20,
            stop_ids: self.tokenizer.specials().stop_ids(),
        };
        let (mut cp, mut wp, mut ex) = (0.0, 0.0, 0.0);
        let mut example = (String::new(), String::new());
        for chunk in ps.chunks(16) {
            let seqs: Vec<Vec<u32>> = chunk
                .iter()
                .map(|p| {
                    c3_core::prompt::encoder_input(
                        &p.ids,
                        self.model.config.n_latents(),
                        self.tokenizer.specials(),
                    )
                })
                .collect();
            let batch =
                EncoderBatch::new(&seqs, self.tokenizer.specials().endoftext, self.vs.device())?;
            let projected = tch::no_grad(|| self.model.project(&self.model.encode(&batch)));
            let gens = generate(&self.model, &self.prompt, &projected, &cfg)?;
            for (p, g) in chunk.iter().zip(gens) {
                let out = self.tokenizer.decode_text(&g.ids)?;
                let reference = p.text.trim();
                cp += char_precision(reference, &out);
                wp += word_precision(reference, &out);
                ex += f64::from(u8::from(out == reference));
                if example.0.is_empty() {
                    example = (reference.to_string(), out);
                }
            }
        }
        let k = ps.len().max(1) as f64;
        Ok(Evaluation {
            char_precision: cp / k,
            word_precision: wp / k,
            exact: ex / k,
            example,
        })
    }

    /// Writes a checkpoint of the current state.
    pub fn save(&self) -> Result<PathBuf> {
        state::save(
            &self.out,
            &self.vs,
            &self.model,
            &self.opt,
            &self.recipe,
            &self.tokenizer_file,
        )
    }

    /// Trains until `total_steps` or until `stop` is set (then saves and returns).
    pub fn run(&mut self, stop: &AtomicBool, on: &mut dyn FnMut(Event)) -> Result<Outcome> {
        let s = self.recipe.schedule.clone();
        let params = self.opt.params.values().map(|p| p.var.numel() as i64).sum();
        on(Event::Started {
            step: self.opt.step,
            total: s.total_steps as u64,
            train: self.data.train.len(),
            held_out: self.data.held_out.len(),
            params,
            resumed_from: self.resumed_from.clone(),
        });
        let metrics_path = self.out.join("metrics.jsonl");
        std::fs::create_dir_all(&self.out).map_err(|e| Error::Io {
            path: self.out.clone(),
            source: e,
        })?;
        let mut metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|e| Error::Io {
                path: metrics_path.clone(),
                source: e,
            })?;
        let mut log = |v: serde_json::Value| {
            let _ = writeln!(metrics, "{v}");
        };
        let mut t0 = Instant::now();
        let mut window = (0.0, 0usize, 0usize);
        while (self.opt.step as usize) < s.total_steps {
            if stop.load(Ordering::SeqCst) {
                let path = self.save()?;
                on(Event::Saved {
                    step: self.opt.step,
                    path,
                });
                return Ok(Outcome::Interrupted {
                    step: self.opt.step,
                });
            }
            let lr = lr_at(self.opt.step as usize, self.recipe.optim.lr, &s);
            let (loss, norm, tokens) = self.train_step()?;
            let step = self.opt.step;
            window = (window.0 + loss, window.1 + 1, window.2 + tokens);
            if step % s.log_every.max(1) as u64 == 0 || step as usize == s.total_steps {
                let tps = window.2 as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                let mean = window.0 / window.1 as f64;
                log(
                    serde_json::json!({"step": step, "loss": mean, "lr": lr, "grad_norm": norm, "answer_tokens_per_s": tps}),
                );
                on(Event::Step {
                    step,
                    loss: mean,
                    lr,
                    grad_norm: norm,
                    tokens_per_s: tps,
                });
                (t0, window) = (Instant::now(), (0.0, 0, 0));
            }
            if s.eval_every > 0
                && (step % s.eval_every as u64 == 0 || step as usize == s.total_steps)
            {
                let Evaluation {
                    char_precision: cp,
                    word_precision: wp,
                    exact: ex,
                    example,
                } = self.evaluate(s.eval_passages)?;
                let gap = self.latent_gap(s.eval_passages)?;
                let (own, swapped) = (gap.map(|g| g.0), gap.map(|g| g.1));
                log(
                    serde_json::json!({"step": step, "eval_char_precision": cp, "eval_word_precision": wp, "eval_exact": ex, "eval_passages": s.eval_passages.min(self.data.held_out.len()), "eval_loss": own, "eval_loss_swapped_latents": swapped}),
                );
                on(Event::Eval {
                    step,
                    char_precision: cp,
                    word_precision: wp,
                    exact: ex,
                    example,
                });
                t0 = Instant::now();
            }
            if step % s.save_every.max(1) as u64 == 0 || step as usize == s.total_steps {
                let path = self.save()?;
                on(Event::Saved { step, path });
                t0 = Instant::now();
            }
        }
        Ok(Outcome::Finished {
            step: self.opt.step,
        })
    }
}

fn tokenizer_in(dir: &Path) -> Result<PathBuf> {
    for f in [
        c3_core::tokenizer::TOKENIZER_JSON,
        c3_core::tokenizer::QWEN_TIKTOKEN,
    ] {
        if dir.join(f).is_file() {
            return Ok(dir.join(f));
        }
    }
    Err(Error::Input(format!(
        "{}: no tokenizer.json or qwen.tiktoken",
        dir.display()
    )))
}

/// HF-style init (N(0, 0.02) weights, zero biases, unit norms), seeded per name.
fn init_scratch(vs: &VarStore, seed: u64) {
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let key = name.strip_prefix("llm1.").unwrap_or(&name).to_string();
            let spec = TensorSpec {
                name: key,
                shape: var.size().iter().map(|&d| d as usize).collect(),
            };
            let vals = init_values(seed ^ u64::from(name.starts_with("llm1.")), &spec);
            var.copy_(&Tensor::from_slice(&vals).view(var.size().as_slice()));
        }
    });
}

/// Drops metric lines past `step` (written after the checkpoint we resume from).
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .collect();
    std::fs::write(
        path,
        kept.join("\n") + if kept.is_empty() { "" } else { "\n" },
    )
    .map_err(|e| Error::Io {
        path: path.into(),
        source: e,
    })
}

/// Copies `file` into the run folder `out` (same name) and returns the copy's path.
fn stable_copy(file: &Path, out: &Path) -> Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| Error::Input(format!("{}: not a file", file.display())))?;
    let dest = out.join(name);
    if dest != file {
        std::fs::copy(file, &dest).map_err(|e| {
            Error::Input(format!(
                "copying {} to {}: {e}",
                file.display(),
                dest.display()
            ))
        })?;
    }
    Ok(dest)
}
