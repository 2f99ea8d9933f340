//! A full disk and a read-only output folder under `c3 export --force`,
//! `c3 compress --force` and `c3 train`'s checkpoint (issue 25): one line naming the
//! path (and, when room ran out, what was needed and what was free), exit 1, no
//! staging left behind, the old artifact intact and still loading.
//!
//! A full disk is a file-size limit (RLIMIT_FSIZE: writes past it fail with EFBIG,
//! as with ENOSPC), which needs no privileges. A read-only folder is one without
//! write permission; root ignores permissions, so under root (CI) the folder is
//! made immutable instead (`chattr +i`), and where neither is possible the test
//! says so and checks nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

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

/// Says on the terminal that a test checked nothing: written to stderr directly, so
/// the test harness's capture (which holds `eprintln!` of passing tests) shows it.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED (disk.rs): {why}");
}

/// A folder made read-only for the `c3` processes the test starts, writable again
/// on drop (so the temporary folder can be removed).
struct ReadOnly {
    dir: PathBuf,
    immutable: bool,
}

impl ReadOnly {
    /// `None` (with a note on stderr) where this process cannot make it read-only.
    fn new(dir: &Path) -> Option<ReadOnly> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let made = if root {
            Command::new("chattr")
                .args(["+i", s(dir)])
                .output()
                .is_ok_and(|o| o.status.success())
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).is_ok()
        };
        // From here the guard makes the folder writable again, whatever follows.
        let guard = ReadOnly {
            dir: dir.to_path_buf(),
            immutable: root,
        };
        // Permissions or not, the folder must refuse a new file now.
        let probe = dir.join(".probe");
        if !made || std::fs::write(&probe, b"x").is_ok() {
            drop(guard);
            let _ = std::fs::remove_file(&probe);
            skipped(&format!("cannot make {} read-only here", dir.display()));
            return None;
        }
        Some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.immutable {
            let _ = Command::new("chattr").args(["-i", s(&self.dir)]).output();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// An export at `dir/ex` and a latent file at `dir/doc.latents` (of `dir/doc.txt`).
fn export_and_latents(dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join("ex");
    ok(&c3(&["export", s(&fixture()), "--out", s(&out)]));
    let doc = dir.join("doc.txt");
    std::fs::write(&doc, "Room for the file runs out half way. ".repeat(200)).unwrap();
    let lat = dir.join("doc.latents");
    ok(&c3(&[
        "compress",
        "--model",
        s(&out),
        s(&doc),
        "-o",
        s(&lat),
    ]));
    (out, lat)
}

#[test]
fn a_full_disk_fails_in_one_line_and_keeps_the_old_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, lat) = export_and_latents(tmp.path());
    let manifest = std::fs::read(out.join("c3-export.json")).unwrap();
    let good = std::fs::read(&lat).unwrap();
    assert!(good.len() > 2048, "{} bytes", good.len());

    // The fixture's encoder alone is ~230 KiB: 64 KiB of room is not enough.
    let o = with_size_limit(64, &["export", s(&fixture()), "--out", s(&out), "--force"]);
    let line = assert_fails(
        &o,
        1,
        &[s(&out), "File too large", "the export needs about"],
    );
    assert!(
        line.contains("KiB there,") && line.contains(" free"),
        "{line}"
    );
    assert_eq!(
        names(tmp.path()),
        ["doc.latents", "doc.txt", "ex"],
        "staging left behind"
    );
    assert_eq!(std::fs::read(out.join("c3-export.json")).unwrap(), manifest);

    let doc = tmp.path().join("doc.txt");
    let args = [
        "compress",
        "--model",
        s(&out),
        s(&doc),
        "-o",
        s(&lat),
        "--force",
    ];
    let o = with_size_limit(1, &args);
    assert_fails(&o, 1, &[s(&lat), "File too large", "the file needs about"]);
    assert_eq!(
        std::fs::read(&lat).unwrap(),
        good,
        "the old latent file changed"
    );
    assert_eq!(names(tmp.path()), ["doc.latents", "doc.txt", "ex"]);
    // The old export still serves the old latents.
    ok(&c3(&["decompress", "--model", s(&out), s(&lat)]));
}

#[test]
fn a_full_disk_during_a_training_checkpoint_keeps_the_last_whole_one() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    ok(&c3(&[
        "train",
        "--config",
        s(&tiny_recipe(tmp.path())),
        "--json",
    ]));
    assert_eq!(checkpoints_load(&run), 2);
    let weights = std::fs::metadata(run.join("checkpoint-0000024/model.safetensors"))
        .unwrap()
        .len();
    // Four more steps, resumed from step 24; the next checkpoint's weights do not fit.
    let longer = tiny_recipe_steps(tmp.path(), 28);
    let o = with_size_limit(weights / 2048, &["train", "--config", s(&longer), "--json"]);
    let line = assert_fails(&o, 1, &["checkpoint-0000026", "the checkpoint needs about"]);
    assert!(line.contains("File too large"), "{line}");
    assert_eq!(checkpoints_load(&run), 2);
    let kept: Vec<String> = names(&run)
        .into_iter()
        .filter(|n| n.starts_with("checkpoint-") || n.starts_with('.'))
        .collect();
    assert_eq!(
        kept,
        ["checkpoint-0000022", "checkpoint-0000024"],
        "staging left behind"
    );
    // With room again the run goes on from step 24.
    ok(&c3(&["train", "--config", s(&longer)]));
    assert!(run.join("checkpoint-0000028").is_dir(), "{:?}", names(&run));
}

#[test]
fn a_read_only_folder_fails_in_one_line_and_keeps_the_old_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    let (out, lat) = export_and_latents(&dir);
    let manifest = std::fs::read(out.join("c3-export.json")).unwrap();
    let good = std::fs::read(&lat).unwrap();
    let doc = dir.join("doc.txt");
    let before = names(&dir);
    {
        let Some(_ro) = ReadOnly::new(&dir) else {
            return;
        };
        let o = c3(&["export", s(&fixture()), "--out", s(&out), "--force"]);
        assert_fails(&o, 1, &[s(&dir)]);
        let o = c3(&[
            "compress",
            "--model",
            s(&out),
            s(&doc),
            "-o",
            s(&lat),
            "--force",
        ]);
        assert_fails(&o, 1, &[s(&lat)]);
        assert_eq!(names(&dir), before, "something was written");
    }
    assert_eq!(std::fs::read(out.join("c3-export.json")).unwrap(), manifest);
    assert_eq!(std::fs::read(&lat).unwrap(), good);
    ok(&c3(&["decompress", "--model", s(&out), s(&lat)]));
}

#[test]
fn a_read_only_run_folder_stops_training_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    ok(&c3(&["train", "--config", s(&tiny_recipe(tmp.path()))]));
    let before = names(&run);
    let longer = tiny_recipe_steps(tmp.path(), 28);
    {
        let Some(_ro) = ReadOnly::new(&run) else {
            return;
        };
        let o = c3(&["train", "--config", s(&longer)]);
        assert_fails(&o, 1, &[s(&run)]);
        assert_eq!(names(&run), before, "something was written");
    }
    assert_eq!(checkpoints_load(&run), 2);
    ok(&c3(&["train", "--config", s(&longer)]));
    assert!(run.join("checkpoint-0000028").is_dir(), "{:?}", names(&run));
}
