//! Faults injected into the `c3` binary (issue 25): SIGKILL at ten points of
//! `c3 export --force`, `c3 compress --force`, `c3 train` and `c3 triton --force`
//! over a good artifact. After each, the output path holds the old artifact or a
//! complete new one (it loads), never a half-written one; the next run cleans up
//! what a killed run left and succeeds. (A full disk and a read-only folder: disk.rs.)

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::*;

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

#[test]
fn sigkill_at_ten_points_of_a_build_dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("trt");
    ok(&c3(&[
        "export",
        s(&fixture()),
        "--out",
        s(&export),
        "--target",
        "tensorrt",
    ]));
    let files = names(&export);
    let plans = tmp.path().join("trt-plans");
    let args = ["build", s(&export), "--out", s(&plans), "--dry-run"];
    let full = timed(&args);
    for k in 1..=10u32 {
        killed_after(&args, full * k / 11);
        // A dry run reads the export and checks its graphs: nothing is written, so a
        // kill anywhere leaves the folder as it was.
        assert_eq!(names(tmp.path()), ["trt"], "kill {k}");
        assert_eq!(names(&export), files, "kill {k}");
    }
    ok(&c3(&args));
    let text = tmp.path().join("t.txt");
    std::fs::write(&text, "The export still loads after the killed dry runs.").unwrap();
    export_works(&export, &text);
}
