//! The documents a load run sends: a text file of paragraphs, or a folder of `.txt`
//! files. Empty inputs are refused up front, since every empty document would only
//! measure the server's 400 path.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Reads the documents at `path`.
///
/// - a file: one document per paragraph; paragraphs are separated by one or more
///   blank (whitespace-only) lines, and each is trimmed (its inner line breaks kept);
/// - a folder: each `*.txt` file in it (not recursive, by name order) is one
///   document, trimmed; an empty one is refused by name.
///
/// Errors name the path at fault and say what was expected.
pub fn read_documents(path: &Path) -> Result<Vec<String>> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        read_folder(path)
    } else {
        let docs = paragraphs(&read_utf8(path)?);
        if docs.is_empty() {
            return Err(Error::NoDocuments {
                path: path.to_path_buf(),
                why: "the file has no text (documents are paragraphs separated by blank lines)",
            });
        }
        Ok(docs)
    }
}

/// Splits `text` into trimmed paragraphs separated by blank lines.
pub fn paragraphs(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            push_paragraph(&mut docs, &mut current);
        } else {
            current.push(line);
        }
    }
    push_paragraph(&mut docs, &mut current);
    docs
}

fn push_paragraph(docs: &mut Vec<String>, lines: &mut Vec<&str>) {
    if !lines.is_empty() {
        docs.push(lines.join("\n").trim().to_string());
        lines.clear();
    }
}

fn read_folder(dir: &Path) -> Result<Vec<String>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "txt") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::NoDocuments {
            path: dir.to_path_buf(),
            why: "the folder has no .txt files (each .txt file is one document)",
        });
    }
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = read_utf8(f)?.trim().to_string();
            if text.is_empty() {
                return Err(Error::NoDocuments {
                    path: f.clone(),
                    why: "the document is empty",
                });
            }
            Ok(text)
        })
        .collect()
}

fn read_utf8(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_on_blank_lines_and_keep_inner_breaks() {
        let text = "\n\n first line\nsecond line \n\n  \t \nnext\r\n\r\n\r\nlast";
        assert_eq!(
            paragraphs(text),
            ["first line\nsecond line", "next", "last"]
        );
        assert!(paragraphs(" \n\n\t\n").is_empty());
        assert!(paragraphs("").is_empty());
    }

    #[test]
    fn a_file_is_one_document_per_paragraph() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("docs.txt");
        std::fs::write(&f, "one\n\ntwo\nlines\n").unwrap();
        assert_eq!(read_documents(&f).unwrap(), ["one", "two\nlines"]);
    }

    #[test]
    fn a_folder_is_one_document_per_txt_file_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "second\n\nstill second").unwrap();
        std::fs::write(dir.path().join("a.txt"), "  first  ").unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
        std::fs::create_dir(dir.path().join("sub.txt")).unwrap();
        assert_eq!(
            read_documents(dir.path()).unwrap(),
            ["first", "second\n\nstill second"]
        );
    }

    #[test]
    fn empty_inputs_are_refused_with_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("empty.txt");
        std::fs::write(&f, " \n\n").unwrap();
        let e = read_documents(&f).unwrap_err().to_string();
        assert!(
            e.contains("empty.txt: no documents: the file has no text"),
            "{e}"
        );
        assert!(!e.contains('\n'));

        let sub = dir.path().join("none");
        std::fs::create_dir(&sub).unwrap();
        let e = read_documents(&sub).unwrap_err().to_string();
        assert!(e.contains("the folder has no .txt files"), "{e}");

        // The folder holding an empty .txt file names that file.
        let e = read_documents(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("empty.txt: no documents: the document is empty"),
            "{e}"
        );

        let e = read_documents(&dir.path().join("missing.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.txt"), "{e}");
    }

    #[test]
    fn non_utf8_is_refused_with_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.txt");
        std::fs::write(&f, b"ok\xff").unwrap();
        let e = read_documents(&f).unwrap_err().to_string();
        assert!(
            e.contains("not valid UTF-8 (invalid byte at offset 2)"),
            "{e}"
        );
    }
}
