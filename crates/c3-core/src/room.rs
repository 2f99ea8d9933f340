//! Disk room for artifacts: how much a write needs beside how much its filesystem
//! has. Writers check before they start ([`check`]: a full disk is refused before
//! any work, naming the folder and both sizes) and, when a write still runs out
//! part way (another process filled the disk, a quota, a file-size limit), turn the
//! bare "No space left on device" into the same line ([`explain`]).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The OS errors of a write that ran out of room: no space on the device (ENOSPC),
/// a disk quota (EDQUOT), or a file-size limit (EFBIG, `ulimit -f`).
const OUT_OF_ROOM: [i32; 3] = [libc::ENOSPC, libc::EDQUOT, libc::EFBIG];

/// Bytes free to an unprivileged writer on the filesystem holding `path` (or its
/// nearest existing ancestor: the folder to be written may not exist yet).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut p = Some(path);
    while let Some(dir) = p {
        if dir.exists() {
            return statvfs_free(dir);
        }
        p = dir.parent().filter(|d| !d.as_os_str().is_empty());
    }
    statvfs_free(Path::new("."))
}

#[cfg(unix)]
fn statvfs_free(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `s` is written by statvfs on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0, so statvfs filled `s`.
    let s = unsafe { s.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

#[cfg(not(unix))]
fn statvfs_free(_dir: &Path) -> Option<u64> {
    None
}

/// Whether `e`, or any error it wraps, is a write that ran out of room. libtorch's
/// errors arrive as text only, so as a last resort the text is read for the OS error:
/// "(os error N)" as io::Error displays it, or its kind as it debug-prints
/// (tch's safetensors errors: `IoError(Os { code: 27, kind: FileTooLarge, .. })`).
pub fn is_out_of_room(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(code) = os_error(e).and_then(std::io::Error::raw_os_error) {
        return OUT_OF_ROOM.contains(&code);
    }
    let text = chain_text(e);
    OUT_OF_ROOM.iter().any(|c| {
        text.contains(&format!("(os error {c})")) || text.contains(&format!("code: {c}, kind: "))
    })
}

/// Every message of `e`'s chain, joined; a cause whose text its wrapper already
/// shows (libtorch's errors repeat theirs) is said once.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let part = err.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        cur = err.source();
    }
    text
}

/// The innermost error of `e`'s chain that carries an OS error code.
fn os_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur = Some(e);
    let mut found = None;
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.raw_os_error().is_some()
        {
            found = Some(io);
        }
        cur = err.source();
    }
    found
}

/// Refuses, before any work, to write `what` (about `needed` bytes) under `dir` when
/// its filesystem has less free. Unknown free space is no reason to refuse.
pub fn check(dir: &Path, what: &str, needed: u64) -> Result<()> {
    match free_bytes(dir) {
        Some(free) if free < needed => Err(Error::NoRoom {
            path: dir.to_path_buf(),
            cause: "not enough free space".into(),
            what: what.to_string(),
            needed,
            free: Some(free),
        }),
        _ => Ok(()),
    }
}

/// `Some(NoRoom)` when `e` ran out of room writing `what` (about `needed` bytes) at
/// `path`; `None` for any other failure, which the caller reports as it is.
pub fn explain(
    e: &(dyn std::error::Error + 'static),
    path: &Path,
    what: &str,
    needed: u64,
) -> Option<Error> {
    is_out_of_room(e).then(|| Error::NoRoom {
        path: PathBuf::from(path),
        // The OS's words ("No space left on device (os error 28)"), not the wrapper's,
        // which would name the path a second time.
        cause: match os_error(e) {
            Some(io) => io.to_string(),
            None => chain_text(e).trim().replace('\n', " "),
        },
        what: what.to_string(),
        needed,
        free: free_bytes(path),
    })
}

/// The tail of [`Error::NoRoom`]'s line: "3.39 MiB there, 120.0 KiB free".
pub(crate) fn sizes(needed: &u64, free: &Option<u64>) -> String {
    let free = free.map_or_else(
        || "free space unknown".to_string(),
        |f| format!("{} free", human(f)),
    );
    format!("{} there, {free}", human(*needed))
}

/// `e`, or the [`Error::NoRoom`] line [`explain`] makes of it when it ran out of room:
/// what a writer maps its own error through.
pub fn annotate<E>(e: E, path: &Path, what: &str, needed: u64) -> E
where
    E: std::error::Error + From<Error> + 'static,
{
    match explain(&e, path, what, needed) {
        Some(full) => E::from(full),
        None => e,
    }
}

/// A byte count for people: "512 B", "3.4 MiB", "1.25 GiB".
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let digits = if v < 10.0 { 2 } else { 1 };
    format!("{v:.digits$} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 * 1024 * 1024 + 400 * 1024), "3.39 MiB");
        assert_eq!(human(150 * 1024 * 1024), "150.0 MiB");
    }

    #[test]
    fn free_space_of_a_folder_not_made_yet_is_its_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let here = free_bytes(tmp.path()).expect("statvfs");
        let later = free_bytes(&tmp.path().join("a/b/c")).expect("statvfs");
        // Other processes write too: equal within a few MiB.
        assert!(here.abs_diff(later) < 64 << 20, "{here} vs {later}");
    }

    #[test]
    fn a_write_larger_than_the_disk_is_refused_up_front() {
        let tmp = tempfile::tempdir().unwrap();
        let e = check(tmp.path(), "the export", u64::MAX).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("the export needs"), "{msg}");
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
        check(tmp.path(), "the export", 1).unwrap();
    }

    #[test]
    fn out_of_room_is_told_from_other_failures() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(is_out_of_room(&full));
        assert!(!is_out_of_room(&denied));
        let wrapped = Error::Io {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc::EFBIG),
        };
        assert!(is_out_of_room(&wrapped));
        // libtorch's errors are text: the OS error number is read from it.
        let text = std::io::Error::other("write failed: File too large (os error 27)");
        assert!(is_out_of_room(&text));
        let debug = std::io::Error::other(
            r#"IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })"#,
        );
        assert!(is_out_of_room(&debug));
        let other = std::io::Error::other(
            r#"IoError(Os { code: 13, kind: PermissionDenied, message: "Permission denied" })"#,
        );
        assert!(!is_out_of_room(&other));
        let e = explain(&full, Path::new("/x/y"), "the checkpoint", 5 << 20).unwrap();
        let msg = e.to_string();
        assert!(msg.starts_with("/x/y: "), "{msg}");
        assert!(
            msg.contains("the checkpoint needs about 5.00 MiB there"),
            "{msg}"
        );
        assert!(explain(&denied, Path::new("/x"), "it", 1).is_none());
    }
}
