//! Faults injected into the `c3` binary (issue 25): SIGKILL at ten points of
//! `c3 export --force` and `c3 compress --force` over a good artifact, and a full
//! disk (a file-size limit, RLIMIT_FSIZE: no privileges needed) during both. After
//! each, the output path holds the old artifact or a complete new one (it loads),
//! never a half-written one; the next run cleans up what a killed run left and
//! succeeds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `c3 args`, killed with SIGKILL after `after` (if it has not ended).
fn killed_after(args: &[&str], after: Duration) {
    let mut child = c3_cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL: no cleanup of ours runs
    let _ = child.wait();
}

/// Wall time of one successful run of `c3 args`.
fn timed(args: &[&str]) -> Duration {
    let t0 = Instant::now();
    ok(&c3(args));
    t0.elapsed()
}

/// The export at `dir` loads and round-trips a text.
fn export_works(dir: &Path, text: &Path) {
    ok(&c3(&[
        "roundtrip",
        "--model",
        s(dir),
        s(text),
        "--json",
        "--max-new-tokens",
        "4",
    ]));
}

#[test]
fn sigkill_at_ten_points_of_export_leaves_the_old_export_or_the_new() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ex");
    let text = tmp.path().join("doc.txt");
    std::fs::write(&text, "A document for the round trip after each kill.").unwrap();
    let fixture = fixture();
    let args = ["export", s(&fixture), "--out", s(&out), "--force"];
    let full = timed(&args);
    export_works(&out, &text);
    for k in 1..=10u32 {
        killed_after(&args, full * k / 11);
        assert!(
            out.join("c3-export.json").is_file(),
            "kill {k}: no export at --out"
        );
        export_works(&out, &text);
    }
    // The next run removes what the killed ones left beside the export.
    ok(&c3(&args));
    assert_eq!(names(tmp.path()), ["doc.txt", "ex"]);
    export_works(&out, &text);
}

#[test]
fn sigkill_at_ten_points_of_compress_leaves_the_old_file_or_the_new() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("ex");
    ok(&c3(&["export", s(&fixture()), "--out", s(&export)]));
    let doc = tmp.path().join("doc.txt");
    std::fs::write(
        &doc,
        "Latent files are written whole or not at all. ".repeat(40),
    )
    .unwrap();
    let lat = tmp.path().join("doc.latents");
    let args = [
        "compress",
        "--model",
        s(&export),
        s(&doc),
        "-o",
        s(&lat),
        "--force",
    ];
    let full = timed(&args);
    let good = std::fs::read(&lat).unwrap();
    for k in 1..=10u32 {
        killed_after(&args, full * k / 11);
        // Latent files are byte-reproducible: whichever run wrote it, the same bytes.
        assert_eq!(std::fs::read(&lat).unwrap(), good, "kill {k}");
        ok(&c3(&[
            "decompress",
            "--model",
            s(&export),
            s(&lat),
            "--json",
        ]));
    }
    ok(&c3(&args));
    assert_eq!(names(tmp.path()), ["doc.latents", "doc.txt", "ex"]);
}

/// `c3 args` under a file-size limit of `kib` KiB: writes past it fail with EFBIG
/// (SIGXFSZ ignored), as on a full disk.
fn with_size_limit(kib: u64, args: &[&str]) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {kib}; exec '{}' {}",
            env!("CARGO_BIN_EXE_c3"),
            quoted.join(" ")
        ))
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_fails_in_one_line_and_keeps_the_old_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ex");
    ok(&c3(&["export", s(&fixture()), "--out", s(&out)]));
    let before = std::fs::read(out.join("c3-export.json")).unwrap();
    // The fixture's encoder alone is ~230 KiB: 64 KiB of room is not enough.
    let o = with_size_limit(64, &["export", s(&fixture()), "--out", s(&out), "--force"]);
    let line = assert_fails(&o, 1, &[]);
    assert!(
        line.contains("File too large") || line.contains("No space"),
        "{line}"
    );
    assert!(
        line.contains(s(tmp.path())),
        "the line names the path: {line}"
    );
    assert_eq!(names(tmp.path()), ["ex"], "staging left behind");
    assert_eq!(std::fs::read(out.join("c3-export.json")).unwrap(), before);

    let doc = tmp.path().join("doc.txt");
    std::fs::write(&doc, "Room for the file runs out half way. ".repeat(200)).unwrap();
    let lat = tmp.path().join("doc.latents");
    ok(&c3(&[
        "compress",
        "--model",
        s(&out),
        s(&doc),
        "-o",
        s(&lat),
    ]));
    let good = std::fs::read(&lat).unwrap();
    assert!(good.len() > 2048, "{} bytes", good.len());
    let o = with_size_limit(
        1,
        &[
            "compress",
            "--model",
            s(&out),
            s(&doc),
            "-o",
            s(&lat),
            "--force",
        ],
    );
    let line = assert_fails(&o, 1, &[s(&lat)]);
    assert!(line.contains("File too large"), "{line}");
    assert_eq!(
        std::fs::read(&lat).unwrap(),
        good,
        "the old latent file changed"
    );
    assert_eq!(names(tmp.path()), ["doc.latents", "doc.txt", "ex"]);
}

/// A tiny `c3 train` recipe: 24 steps of a 1-layer model, a checkpoint every 2.
fn tiny_recipe(dir: &Path) -> std::path::PathBuf {
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let text: Vec<String> = (0..60)
        .map(|i| format!("{} {} {}.", words[i % 6], words[(i * 5 + 1) % 6], i))
        .collect();
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, text.join(" ")).unwrap();
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
[schedule]
total_steps = 24
warmup_steps = 2
eval_every = 0
save_every = 2
keep_last = 2
log_every = 1
"#,
        out = dir.join("run").display(),
        corpus = corpus.display(),
        tok = fixture().join("tokenizer.json").display(),
    );
    let p = dir.join("recipe.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

/// Every checkpoint a run folder lists is complete: it loads.
fn checkpoints_load(run: &Path) -> usize {
    let mut n = 0;
    for name in names(run).iter().filter(|n| n.starts_with("checkpoint-")) {
        ok(&c3(&["inspect", s(&run.join(name))]));
        n += 1;
    }
    n
}

#[test]
fn sigkill_at_ten_points_of_training_keeps_every_checkpoint_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tiny_recipe(tmp.path());
    let run = tmp.path().join("run");
    let args = ["train", "--config", s(&recipe), "--json"];
    // The whole run once, to time it; then again from scratch, killed ten times.
    let full = timed(&args);
    std::fs::remove_dir_all(&run).unwrap();
    for k in 1..=10u32 {
        killed_after(&args, full * k / 11);
        if run.exists() {
            checkpoints_load(&run);
        }
    }
    // The next run resumes from the last whole checkpoint, ends, and removes what
    // the killed runs left.
    let out = c3(&args);
    ok(&out);
    assert!(checkpoints_load(&run) >= 1);
    let hidden: Vec<String> = names(&run)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");
    assert!(run.join("checkpoint-0000024").is_dir(), "{:?}", names(&run));
}

#[test]
fn sigkill_at_ten_points_of_triton_leaves_the_old_repository_or_the_new() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("ex");
    ok(&c3(&["export", s(&fixture()), "--out", s(&export)]));
    let repo = tmp.path().join("repo");
    // With the export copied in, the repository takes long enough to be killed inside.
    let args = [
        "triton",
        s(&export),
        "--out",
        s(&repo),
        "--copy-export",
        "--force",
    ];
    let full = timed(&args);
    let whole = |k: u32| {
        assert!(
            repo.join("c3-triton.json").is_file(),
            "kill {k}: no repository"
        );
        for m in ["c3_roundtrip", "c3_compress", "c3_decompress"] {
            assert!(repo.join(m).join("config.pbtxt").is_file(), "kill {k}: {m}");
            assert!(repo.join(m).join("1/model.py").is_file(), "kill {k}: {m}");
        }
    };
    whole(0);
    for k in 1..=10u32 {
        killed_after(&args, full * k / 11);
        whole(k);
    }
    ok(&c3(&args));
    whole(11);
    assert_eq!(names(tmp.path()), ["ex", "repo"]);
}
