//! Latent files: "compress once, decode many times". A safetensors file with one f32
//! tensor `latents` `[windows, N, D]` (every window of every document, in document
//! order) and metadata: the export it came from (its manifest hash), N, each
//! document's token count and source name, and the window index (which rows belong
//! to which document, which tokens each holds; c3_core::window). A latent file from
//! another export is refused: latents are only meaningful to the decoder whose
//! projector made them. Files are untrusted input: the index must describe the
//! tensor exactly and every value must be finite, or the file is refused in one line
//! (an [`Error::Input`]: the bytes are the caller's).

use std::path::Path;

use c3_core::Window;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result, ensure};
use crate::latents::Latents;
use crate::model::{C3Runtime, Compressed};

/// Metadata key of the export's manifest hash.
pub const KEY_MANIFEST: &str = "c3.export_manifest_sha256";
const KEY_FORMAT: &str = "c3.format";
/// Current format: windows. `c3-latents/1` files (one row per document) still load.
const FORMAT: &str = "c3-latents/2";
const FORMAT_V1: &str = "c3-latents/1";
const KEY_N: &str = "c3.n_latents";
const KEY_TOKENS: &str = "c3.text_tokens";
const KEY_SOURCES: &str = "c3.sources";
const KEY_WINDOWS: &str = "c3.windows";

/// Windowed latents of several documents with their sources.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentFile {
    pub manifest_sha256: String,
    pub compressed: Compressed,
    pub sources: Vec<String>,
}

/// The exact bytes of a latent file for `c` (what [`save`] writes).
pub fn to_bytes(rt: &C3Runtime, c: &Compressed, sources: &[String]) -> Result<Vec<u8>> {
    ensure!(
        !c.latents.is_empty()
            && c.latents.len() == c.windows.len()
            && sources.len() == c.doc_tokens.len(),
        Input,
        "nothing to write: {} windows, {} latents, {} sources for {} documents",
        c.windows.len(),
        c.latents.len(),
        sources.len(),
        c.doc_tokens.len()
    );
    let (n, d) = (c.latents[0].n(), c.latents[0].dim());
    let mut bytes = Vec::with_capacity(c.latents.len() * n * d * 4);
    for l in &c.latents {
        ensure!(
            l.n() == n && l.dim() == d,
            Input,
            "latents of different shapes cannot share a file"
        );
        bytes.extend(l.data().iter().flat_map(|v| v.to_le_bytes()));
    }
    let meta = [
        (KEY_FORMAT, FORMAT.to_string()),
        (KEY_MANIFEST, rt.manifest_sha256.clone()),
        (KEY_N, n.to_string()),
        (KEY_TOKENS, json(&c.doc_tokens)?),
        (KEY_SOURCES, json(sources)?),
        (KEY_WINDOWS, json(&c.windows)?),
    ];
    Ok(safetensors_bytes(&meta, &[c.latents.len(), n, d], &bytes))
}

/// One f32 tensor `latents` in the safetensors layout (u64 LE header length, JSON
/// header padded with spaces to 8 bytes, data), written here rather than by the
/// `safetensors` crate, whose metadata is a `HashMap` serialized in random order:
/// the same documents must give the same bytes (a file is hashed, cached, diffed).
fn safetensors_bytes(meta: &[(&str, String); 6], shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    for (k, v) in meta {
        m.insert((*k).to_string(), serde_json::Value::String(v.clone()));
    }
    let header = serde_json::json!({
        "__metadata__": m,
        "latents": {"dtype": "F32", "shape": shape, "data_offsets": [0, data.len()]},
    });
    let mut h = header.to_string().into_bytes();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend((h.len() as u64).to_le_bytes());
    out.extend(h);
    out.extend_from_slice(data);
    out
}

// Shapes and values were checked by `to_bytes` and `Latents::new`, so serializing
// cannot fail on the caller's input: a failure here is this code's own.
fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("latent file: {e}"))
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(internal)
}

/// Writes the latent file atomically to `path` (`c3_core::staging::write_file`: a
/// partial file beside it, renamed into place; a killed run's partial file is
/// removed by the next write). Readable like any file the user writes (0644).
pub fn save(path: &Path, rt: &C3Runtime, c: &Compressed, sources: &[String]) -> Result<()> {
    let data = to_bytes(rt, c, sources)?;
    c3_core::staging::write_file(path, &data, 0o644).map_err(|e| match e {
        c3_core::Error::Io { path, source } => Error::io(path, source),
        other => other.into(),
    })
}

/// Reads a latent file, refusing one made by a different export than `rt`'s.
/// The file is the caller's input (a path on the command line): what is wrong with
/// its bytes is an [`Error::Input`] naming it.
pub fn load(path: &Path, rt: &C3Runtime) -> Result<LatentFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes, rt).map_err(|e| match e {
        Error::Input(msg) => Error::Input(format!("latent file {}: {msg}", path.display())),
        other => other,
    })
}

/// Parses and validates latent-file bytes (untrusted: an upload, a file on disk).
pub fn from_bytes(bytes: &[u8], rt: &C3Runtime) -> Result<LatentFile> {
    let not_safetensors = |e| Error::Input(format!("not a latent file (safetensors): {e}"));
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(not_safetensors)?;
    let st = SafeTensors::deserialize(bytes).map_err(not_safetensors)?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| Error::Input(format!("metadata `{k}` missing (not a c3 latent file)")))
    };
    let format = get(KEY_FORMAT)?.as_str();
    ensure!(
        format == FORMAT || format == FORMAT_V1,
        Input,
        "format `{format}`, expected `{FORMAT}`"
    );
    let hash = get(KEY_MANIFEST)?.clone();
    ensure!(
        hash == rt.manifest_sha256,
        Input,
        // No path of ours in the message: it may go back to an uploader.
        "made by export {}…, not by this export ({}…); compress again with this model",
        hash.get(..12).unwrap_or(&hash),
        &rt.manifest_sha256[..12]
    );
    let doc_tokens: Vec<usize> = metadata_json(get(KEY_TOKENS)?, KEY_TOKENS)?;
    let sources: Vec<String> = metadata_json(get(KEY_SOURCES)?, KEY_SOURCES)?;
    ensure!(
        sources.len() == doc_tokens.len(),
        Input,
        "metadata lists {} sources for {} documents",
        sources.len(),
        doc_tokens.len()
    );
    let windows: Vec<Window> = if format == FORMAT_V1 {
        // One unpadded row per document.
        (doc_tokens.iter().enumerate())
            .map(|(doc, &tokens)| Window {
                doc,
                start: 0,
                tokens,
                skip: 0,
                pad: 0,
            })
            .collect()
    } else {
        metadata_json(get(KEY_WINDOWS)?, KEY_WINDOWS)?
    };
    let t = st
        .tensor("latents")
        .map_err(|e| Error::Input(format!("no `latents` tensor: {e}")))?;
    ensure!(
        t.dtype() == Dtype::F32,
        Input,
        "latents are {:?}, expected F32",
        t.dtype()
    );
    let (rows, n, d) = match t.shape() {
        [a, b, c] => (*a, *b, *c),
        s => {
            return Err(Error::Input(format!(
                "latents have shape {s:?}, expected [windows, N, D]"
            )));
        }
    };
    ensure!(
        n == rt.n_latents() && d == rt.manifest.hidden,
        Input,
        "latents are [{n}, {d}] per window, the export takes [{}, {}]",
        rt.n_latents(),
        rt.manifest.hidden
    );
    ensure!(
        rows == windows.len(),
        Input,
        "the window index lists {} windows, the tensor has {rows} rows",
        windows.len()
    );
    check_index(&windows, &doc_tokens, rt.manifest.max_text_tokens)?;
    let vals: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // Checked here too (`Latents::new` would refuse them): this message names the window.
    if let Some(i) = vals.iter().position(|v| !v.is_finite()) {
        return Err(Error::Input(format!(
            "latent value {} of window {} is not finite",
            vals[i],
            i / (n * d).max(1)
        )));
    }
    let latents = windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let data = vals[i * n * d..(i + 1) * n * d].to_vec();
            Latents::new(n, d, data, w.tokens + w.pad)
        })
        .collect::<Result<_>>()?;
    Ok(LatentFile {
        manifest_sha256: hash,
        compressed: Compressed {
            windows,
            latents,
            doc_tokens,
        },
        sources,
    })
}

/// The window index must cover every document exactly once, in order: each
/// window contributes tokens `start + skip .. start + tokens`, and those ranges
/// tile `0 .. doc_tokens` with no gap or overlap.
fn check_index(windows: &[Window], doc_tokens: &[usize], max_text: usize) -> Result<()> {
    ensure!(!doc_tokens.is_empty(), Input, "the file holds no documents");
    if let Some(i) = doc_tokens.iter().position(|&t| t == 0) {
        return Err(Error::Input(format!("document {i} has no tokens")));
    }
    let mut next = 0; // next document expected
    let mut end = 0; // tokens of it covered so far
    for (i, w) in windows.iter().enumerate() {
        let bad = |what: &str| Error::Input(format!("window {i} of the index: {what}"));
        if w.doc != next {
            // Moving on is only allowed once the current document is complete.
            if !(w.doc == next + 1 && next < doc_tokens.len() && end == doc_tokens[next]) {
                return Err(bad(&format!(
                    "belongs to document {} but document {next} is not complete",
                    w.doc
                )));
            }
            (next, end) = (w.doc, 0);
        }
        let total = *doc_tokens
            .get(w.doc)
            .ok_or_else(|| bad(&format!("document {} does not exist", w.doc)))?;
        if !(w.tokens >= 1 && w.tokens.checked_add(w.pad).is_some_and(|l| l <= max_text)) {
            return Err(bad("its length is outside the encoder's limit"));
        }
        if !(w.skip < w.tokens && w.start.checked_add(w.tokens).is_some_and(|e| e <= total)) {
            return Err(bad("its tokens fall outside its document"));
        }
        if w.start + w.skip != end {
            return Err(bad("it does not continue where the previous window ended"));
        }
        end = w.start + w.tokens;
    }
    ensure!(
        next + 1 == doc_tokens.len() && end == doc_tokens[next],
        Input,
        "the window index does not cover every document ({} documents)",
        doc_tokens.len()
    );
    Ok(())
}

/// A JSON metadata value (`c3.text_tokens`, `c3.sources`, `c3.windows`).
fn metadata_json<T: serde::de::DeserializeOwned>(text: &str, key: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Input(format!("metadata `{key}`: {e}")))
}
