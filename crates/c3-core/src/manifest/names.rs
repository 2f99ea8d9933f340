//! File names an export refers to are untrusted: a manifest (or an ONNX file's
//! external-data `location`) could point outside the export folder, at a file with the
//! same hash elsewhere on the machine. Every such name must be one plain component
//! inside the folder, and if it is a symlink, its target must stay inside too. The
//! checks only look at names and link metadata, so they run before anything is opened.

use std::path::{Component, Path};

use crate::error::{Error, Result};

/// Checks that `value` (the content of `field`, e.g. `models.encoder.file`) names a
/// file directly inside `dir`: one normal path component, and no symlink leaving `dir`.
pub fn check_plain_name(dir: &Path, field: &str, value: &str) -> Result<()> {
    let refuse = |why: &str| {
        Error::Input(format!(
            "{}: {field} `{value}` {why}; an export refers only to plain file names inside its folder",
            dir.display()
        ))
    };
    if Path::new(value).is_absolute() || value.starts_with(['/', '\\']) {
        return Err(refuse("is an absolute path"));
    }
    if value.split(['/', '\\']).any(|part| part == "..") {
        return Err(refuse("goes up out of the folder (`..`)"));
    }
    // Both separators are refused on every platform: an export made on one OS is read
    // on another, and `a\b` is a path on Windows.
    if value.contains(['/', '\\']) {
        return Err(refuse("contains a path separator"));
    }
    let mut parts = Path::new(value).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !value.contains('\0') => {}
        _ => return Err(refuse("is not a plain file name")),
    }
    let path = dir.join(value);
    // A missing file is not this check's business: verify_files names it.
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        let inside = match (std::fs::canonicalize(&path), std::fs::canonicalize(dir)) {
            (Ok(target), Ok(root)) => target.starts_with(&root),
            // A dangling link or an unreadable folder: nothing to vouch for.
            _ => false,
        };
        if !inside {
            return Err(refuse("is a symlink whose target leaves the export folder"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(dir: &Path, value: &str) -> String {
        check_plain_name(dir, "models.encoder.file", value)
            .expect_err(value)
            .to_string()
    }

    #[test]
    fn plain_names_pass_and_others_are_refused_by_field_and_value() {
        let dir = tempfile::tempdir().unwrap();
        check_plain_name(dir.path(), "tokenizer.file", "tokenizer.json").unwrap();
        check_plain_name(dir.path(), "tokenizer.file", "missing.onnx").unwrap();
        for bad in [
            "../elsewhere/encoder.onnx",
            "..",
            ".",
            "",
            "sub/encoder.onnx",
            "sub\\encoder.onnx",
            "/etc/passwd",
            "./encoder.onnx",
            "C:\\models\\encoder.onnx",
            "enc\0oder.onnx",
        ] {
            let err = refused(dir.path(), bad);
            assert!(
                err.contains("models.encoder.file") && err.contains(&format!("`{bad}`")),
                "{err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_may_point_inside_the_folder_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("export");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("real.onnx"), b"x").unwrap();
        std::fs::write(root.path().join("outside.onnx"), b"x").unwrap();
        std::os::unix::fs::symlink("real.onnx", dir.join("inner.onnx")).unwrap();
        std::os::unix::fs::symlink("../outside.onnx", dir.join("outer.onnx")).unwrap();
        std::os::unix::fs::symlink("nowhere.onnx", dir.join("dangling.onnx")).unwrap();
        check_plain_name(&dir, "models.encoder.file", "inner.onnx").unwrap();
        for bad in ["outer.onnx", "dangling.onnx"] {
            let err = refused(&dir, bad);
            assert!(err.contains("symlink") && err.contains(bad), "{err}");
        }
    }
}
