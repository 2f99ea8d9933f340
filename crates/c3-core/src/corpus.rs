//! Reading a text corpus: directories of `.txt`/`.md`/`.rst`/`.pod`/`.jsonl` files
//! (JSONL: one object per line with a string field `text`), in a stable order
//! so that passages, splits and training order are reproducible from a seed.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Extensions read by default (`.rst.txt` is covered by `txt`).
pub const DEFAULT_EXTENSIONS: &[&str] = &["txt", "md", "rst", "pod", "jsonl"];

/// One document: where it came from and its text.
#[derive(Debug, Clone)]
pub struct Document {
    pub source: String,
    pub text: String,
}

/// All files under `roots` (files or directories, recursively) with one of
/// `extensions`, sorted by path.
pub fn list_files(roots: &[PathBuf], extensions: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for r in roots {
        if r.is_file() {
            out.push(r.clone());
        } else if r.is_dir() {
            walk(r, extensions, &mut out)?;
        } else {
            return Err(Error::Input(format!(
                "corpus path {} does not exist",
                r.display()
            )));
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, exts: &[String], out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            walk(&p, exts, out)?;
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| exts.iter().any(|e| e.eq_ignore_ascii_case(x)))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads every document of `files`. Files that are not UTF-8 are an error
/// naming the file (a corpus should be cleaned, not silently skipped).
pub fn read_documents(files: &[PathBuf]) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::Input(format!(
                "{}: not valid UTF-8 (byte {})",
                f.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        let source = f.display().to_string();
        if f.extension().is_some_and(|x| x == "jsonl") {
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                    Error::Input(format!("{}:{}: invalid JSON: {e}", f.display(), i + 1))
                })?;
                let t = v.get("text").and_then(|t| t.as_str()).ok_or_else(|| {
                    Error::Input(format!("{}:{}: no string field `text`", f.display(), i + 1))
                })?;
                docs.push(Document {
                    source: format!("{source}:{}", i + 1),
                    text: t.to_string(),
                });
            }
        } else if !text.trim().is_empty() {
            docs.push(Document { source, text });
        }
    }
    Ok(docs)
}
