//! Training behaviour on a tiny byte-level model: it overfits a few passages,
//! labels cover exactly the answer and `<|im_end|>`, and a run resumed from a
//! checkpoint ends bit-for-bit (within 1e-6) where an uninterrupted run ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use c3_train::{Outcome, Recipe, Trainer};

fn tokenizer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny/tokenizer.json")
}

/// A corpus of `n` short distinct sentences in one file.
fn corpus(dir: &Path, n: usize) -> PathBuf {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let text: Vec<String> = (0..n)
        .map(|i| format!("{} {} {}.", words[i % 8], words[(i * 3 + 1) % 8], i))
        .collect();
    let f = dir.join("corpus.txt");
    std::fs::write(&f, text.join(" ")).unwrap();
    f
}

fn recipe(dir: &Path, corpus: PathBuf, steps: usize) -> Recipe {
    let toml = format!(
        r#"
name = "t"
threads = 1
out_dir = "{out}"
[data]
paths = ["{corpus}"]
min_tokens = 12
max_tokens = 16
held_out = 2
word_dropout = 0.1
[model]
tokenizer = "{tok}"
latent_tokens = 2
[model.encoder]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
max_position_embeddings = 128
[model.decoder]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
max_position_embeddings = 256
[optim]
lr = 1e-2
batch_size = 4
grad_accum = 2
[schedule]
total_steps = {steps}
warmup_steps = 5
eval_every = 0
save_every = 1000000
log_every = 1
"#,
        out = dir.join("run").display(),
        corpus = corpus.display(),
        tok = tokenizer().display(),
    );
    let p = dir.join("recipe.toml");
    std::fs::write(&p, toml).unwrap();
    Recipe::load(&p).unwrap()
}

fn params(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    t.opt
        .params
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                Vec::<f32>::try_from(p.var.flatten(0, -1)).unwrap(),
            )
        })
        .collect()
}

#[test]
fn overfits_a_handful_of_passages() {
    let tmp = tempfile::tempdir().unwrap();
    // ~10 passages of 12-16 bytes; 8 train, 2 held out.
    let mut r = recipe(tmp.path(), corpus(tmp.path(), 9), 300);
    r.data.word_dropout = 0.0;
    let mut t = Trainer::new(r).unwrap();
    assert!(t.data.train.len() >= 6, "{} passages", t.data.train.len());
    let mut losses = vec![];
    t.run(&AtomicBool::new(false), &mut |e| {
        if let c3_train::Event::Step { loss, .. } = e {
            losses.push(loss)
        }
    })
    .unwrap();
    let first = losses[..5].iter().sum::<f64>() / 5.0;
    let last = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    // Byte-level start: ~ln(262) = 5.6 nats; a memorised set is far below 0.5.
    assert!(first > 4.0 && last < 0.5, "loss {first:.3} -> {last:.3}");
}

#[test]
fn resume_equals_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path(), 40);
    let a_dir = tmp.path().join("a");
    let b_dir = tmp.path().join("b");
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    // Run A: 2N steps straight.
    let mut a = Trainer::new(recipe(&a_dir, c.clone(), 12)).unwrap();
    assert_eq!(
        a.run(&AtomicBool::new(false), &mut |_| {}).unwrap(),
        Outcome::Finished { step: 12 }
    );
    // Run B: N steps, stop (as Ctrl-C does: save and return), then a new process resumes.
    let mut b = Trainer::new(recipe(&b_dir, c.clone(), 12)).unwrap();
    let stop = AtomicBool::new(false);
    b.run(&stop, &mut |e| {
        if let c3_train::Event::Step { step: 6, .. } = e {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap();
    assert_eq!(b.step(), 6);
    drop(b);
    let mut b = Trainer::new(recipe(&b_dir, c, 12)).unwrap();
    assert_eq!(b.step(), 6, "did not resume");
    b.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
    for ((n, x), (_, y)) in params(&a).iter().zip(params(&b).iter()) {
        let d = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(d <= 1e-6, "{n} differs by {d}");
    }
}

/// Regression: a resumed run kept reading its tokenizer from the checkpoint it resumed
/// from, which checkpoint rotation (keep_last) then deleted, failing the next save.
#[test]
fn resumed_runs_survive_checkpoint_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(tmp.path(), 20);
    let rotating = |steps| {
        let mut r = recipe(tmp.path(), c.clone(), steps);
        (r.schedule.save_every, r.schedule.keep_last) = (1, 1);
        r
    };
    let mut t = Trainer::new(rotating(2)).unwrap();
    t.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
    drop(t);
    let mut t = Trainer::new(rotating(6)).unwrap();
    assert_eq!(t.step(), 2, "did not resume");
    assert_eq!(
        t.run(&AtomicBool::new(false), &mut |_| {}).unwrap(),
        Outcome::Finished { step: 6 }
    );
}
