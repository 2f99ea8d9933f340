//! Atomic artifact folders (exports, TensorRT plans). An artifact is written into
//! `.NAME.c3-partial-PID` beside its destination (same filesystem) and renamed into
//! place only once it is complete (and, for exports with `--verify`, verified); so a
//! failed, killed or interrupted run never leaves a folder that a later pipeline
//! stage could take for a good one. A failed run removes its partial folder; a killed
//! one cannot, so every run first removes partial folders of the same destination
//! whose process is gone (and puts back a previous artifact a killed `--force` run
//! had moved aside). Single files (latent files) are written the same way
//! ([`write_file`]).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A kind of artifact folder: how messages name it, and the file whose presence
/// marks a complete one (written last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Artifact {
    /// With its article: "an export".
    pub what: &'static str,
    pub marker: &'static str,
}

/// An export folder (`c3 export`), marked by its manifest.
pub const EXPORT: Artifact = Artifact {
    what: "an export",
    marker: crate::MANIFEST_FILE,
};

/// Marker in staging folder names: `.NAME.c3-partial-PID`.
pub const PARTIAL_MARK: &str = "c3-partial";
/// Marker for the previous export while `--force` swaps in the new one.
const OLD_MARK: &str = "c3-old";

/// A staging folder, removed on drop unless [`Staging::publish`]ed.
pub struct Staging {
    dir: PathBuf,
    published: bool,
}

fn parent_and_name(out: &Path) -> Result<(PathBuf, String)> {
    // Never `..` or `/`: the staging folder goes beside a named folder.
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .ok_or_else(|| {
            Error::Input(format!(
                "--out {} needs a folder name (not `..` or `/`)",
                out.display()
            ))
        })?
        .to_string_lossy()
        .into_owned();
    Ok((parent, name))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Input(format!("{what} {}: {e}", path.display()))
}

/// Refuses an `out` that cannot be (re)placed: an existing artifact without `force`,
/// or any non-empty folder or file that is not one. Checked before the work starts
/// and again just before the swap.
pub fn check_out(out: &Path, kind: Artifact, force: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let empty_dir =
        out.is_dir() && std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_none());
    if empty_dir {
        return Ok(());
    }
    if !out.join(kind.marker).is_file() {
        return Err(Error::Input(format!(
            "{} exists and is not {} folder (no {}); refusing to overwrite it",
            out.display(),
            kind.what,
            kind.marker
        )));
    }
    if !force {
        return Err(Error::Input(format!(
            "{} already holds {}; pass --force to replace it",
            out.display(),
            kind.what
        )));
    }
    Ok(())
}

impl Staging {
    /// Creates `.NAME.c3-partial-PID` beside `out`, after removing stale partial
    /// folders of `out` left by processes that no longer run.
    pub fn create(out: &Path) -> Result<Staging> {
        let (parent, name) = parent_and_name(out)?;
        std::fs::create_dir_all(&parent).map_err(|e| io_err("creating", &parent, e))?;
        remove_stale(&parent, &name);
        let dir = parent.join(format!(".{name}.{PARTIAL_MARK}-{}", std::process::id()));
        if dir.exists() {
            // Ours by pid but not by this run: a pid reused after a crash.
            std::fs::remove_dir_all(&dir).map_err(|e| io_err("removing", &dir, e))?;
        }
        std::fs::create_dir(&dir).map_err(|e| io_err("creating", &dir, e))?;
        Ok(Staging {
            dir,
            published: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves the staged folder to `out`. With `force` an existing export is replaced
    /// by two renames (old aside, new in), then the old one is deleted: at every
    /// instant `out` is the complete old export, absent, or the complete new one.
    pub fn publish(mut self, out: &Path, kind: Artifact, force: bool) -> Result<()> {
        check_out(out, kind, force)?;
        let (parent, name) = parent_and_name(out)?;
        let old = parent.join(format!(".{name}.{OLD_MARK}-{}", std::process::id()));
        let mut moved_aside = false;
        if out.is_dir() && out.join(kind.marker).is_file() {
            std::fs::rename(out, &old)
                .map_err(|e| io_err("moving aside the old export", out, e))?;
            moved_aside = true;
        } else if out.exists() {
            // An empty folder (check_out allowed it): rename cannot replace it everywhere.
            std::fs::remove_dir(out).map_err(|e| io_err("removing the empty folder", out, e))?;
        }
        if let Err(e) = std::fs::rename(&self.dir, out) {
            if moved_aside {
                // Put the previous export back rather than leave nothing.
                let _ = std::fs::rename(&old, out);
            }
            return Err(io_err("moving the export into", out, e));
        }
        self.published = true;
        if moved_aside {
            std::fs::remove_dir_all(&old)
                .map_err(|e| io_err("removing the old export", &old, e))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Removes `.NAME.c3-partial-PID` / `.NAME.c3-old-PID` folders (or files) in
/// `parent` whose process is gone, restoring an old artifact when `NAME` itself is
/// missing. Best effort: what cannot be removed is left for the next run.
fn remove_stale(parent: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = [PARTIAL_MARK, OLD_MARK].iter().find_map(|mark| {
            file.strip_prefix(&format!(".{name}.{mark}-"))
                .and_then(|p| p.parse::<u32>().ok())
        });
        if let Some(pid) = pid
            && pid != std::process::id()
            && !process_alive(pid)
        {
            // A `--force` run killed between its two renames left the previous
            // artifact aside and nothing at `out`: put it back rather than lose it.
            let out = parent.join(name);
            if file.contains(OLD_MARK) && !out.exists() {
                tracing::info!(folder = %entry.path().display(), "restoring the previous artifact");
                if std::fs::rename(entry.path(), &out).is_ok() {
                    continue;
                }
            }
            tracing::info!(folder = %entry.path().display(), "removing a stale partial artifact");
            let _ = std::fs::remove_dir_all(entry.path());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` atomically: into `.NAME.c3-partial-PID` beside it, then
/// renamed over it. A failed write removes the partial file; a killed one leaves it,
/// and the next write to the same path removes it (its process is gone). `mode`: the
/// file's permission bits (unix).
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let (parent, name) = parent_and_name(path)?;
    remove_stale(&parent, &name);
    let needed = bytes.len() as u64;
    crate::room::check(&parent, "the file", needed)?;
    let tmp = parent.join(format!(".{name}.{PARTIAL_MARK}-{}", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        Ok::<_, std::io::Error>(())
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::room::explain(&e, path, "the file", needed)
            .unwrap_or_else(|| Error::io(path, e)));
    }
    Ok(())
}

/// Removes hidden entries of `dir` (`.…MARK…-PID`, a name holding one of `marks`
/// and ending in a process id) left by processes that are gone: the temporary
/// folders and files of killed runs (training writes `.state-PID` and
/// `.checkpoint-N.partial-PID`). Best effort, like [`Staging::create`]'s cleanup.
pub fn remove_dead_leftovers(dir: &Path, marks: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.starts_with('.') || !marks.iter().any(|m| file.contains(m)) {
            continue;
        }
        let pid = file.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !process_alive(pid)
        {
            tracing::info!(path = %entry.path().display(), "removing what a killed run left");
            let _ = std::fs::remove_dir_all(entry.path());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` runs. Where `/proc` is missing (not Linux) nothing is
/// known, so the folder is kept: a leftover is harmless, deleting a live export is not.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_folder(dir: &Path, marker: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(crate::MANIFEST_FILE), marker).unwrap();
    }

    #[test]
    fn a_dropped_staging_folder_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("export");
        let s = Staging::create(&out).unwrap();
        std::fs::write(s.path().join("encoder.onnx"), b"x").unwrap();
        drop(s);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn stale_partials_of_dead_processes_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("export");
        // u32::MAX is never a live pid; our own pid is live; another --out is not ours.
        let dead = tmp
            .path()
            .join(format!(".export.{PARTIAL_MARK}-{}", u32::MAX));
        let other = tmp
            .path()
            .join(format!(".other.{PARTIAL_MARK}-{}", u32::MAX));
        std::fs::create_dir(&dead).unwrap();
        std::fs::create_dir(&other).unwrap();
        let s = Staging::create(&out).unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists(), "stale partial folder kept");
        }
        assert!(
            other.exists(),
            "another export's partial folder was touched"
        );
        assert!(s.path().exists());
    }

    #[test]
    fn an_export_moved_aside_by_a_killed_run_is_put_back() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("export");
        let aside = tmp.path().join(format!(".export.{OLD_MARK}-{}", u32::MAX));
        export_folder(&aside, "old");
        let s = Staging::create(&out).unwrap();
        drop(s);
        if Path::new("/proc/self").exists() {
            assert_eq!(
                std::fs::read_to_string(out.join(crate::MANIFEST_FILE)).unwrap(),
                "old"
            );
            assert!(!aside.exists());
        }
    }

    #[test]
    fn files_are_written_whole_and_stale_partials_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("doc.latents");
        let stale = tmp
            .path()
            .join(format!(".doc.latents.{PARTIAL_MARK}-{}", u32::MAX));
        std::fs::write(&stale, b"half").unwrap();
        write_file(&f, b"whole", 0o644).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"whole");
        if Path::new("/proc/self").exists() {
            assert!(!stale.exists());
        }
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "only the file"
        );
        let err = write_file(&tmp.path().join("no/such/dir/f"), b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("no/such/dir/f"), "{err}");
    }

    #[test]
    fn force_replaces_an_export_and_refuses_anything_else() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("export");
        export_folder(&out, "old");
        let s = Staging::create(&out).unwrap();
        export_folder(s.path(), "new");
        let err = s.publish(&out, EXPORT, false).unwrap_err().to_string();
        assert!(err.contains("--force") && err.contains("export"), "{err}");
        assert_eq!(
            std::fs::read_to_string(out.join(crate::MANIFEST_FILE)).unwrap(),
            "old"
        );

        let s = Staging::create(&out).unwrap();
        export_folder(s.path(), "new");
        s.publish(&out, EXPORT, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(crate::MANIFEST_FILE)).unwrap(),
            "new"
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["export"], "no staging or old folder left");

        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("notes.txt"), b"keep").unwrap();
        let err = check_out(&data, EXPORT, true).unwrap_err().to_string();
        assert!(err.contains("not an export folder"), "{err}");
        check_out(&tmp.path().join("empty-or-missing"), EXPORT, false).unwrap();
    }
}
