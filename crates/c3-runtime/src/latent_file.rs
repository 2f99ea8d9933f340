//! Latent files: "compress once, decode many times". A safetensors file with one f32
//! tensor `latents` `[docs, N, D]` and metadata naming the export it came from (its
//! manifest hash), N, each document's token count and source name. A latent file
//! from another export is refused: latents are only meaningful to the decoder whose
//! projector made them.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use safetensors::{Dtype, SafeTensors, serialize};

use crate::model::{C3Runtime, Latents};

/// Metadata key of the export's manifest hash.
pub const KEY_MANIFEST: &str = "c3.export_manifest_sha256";
const KEY_FORMAT: &str = "c3.format";
const FORMAT: &str = "c3-latents/1";
const KEY_N: &str = "c3.n_latents";
const KEY_TOKENS: &str = "c3.text_tokens";
const KEY_SOURCES: &str = "c3.sources";

/// Latents of several documents with their sources.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentFile {
    pub manifest_sha256: String,
    pub docs: Vec<Latents>,
    pub sources: Vec<String>,
}

/// Writes `docs` atomically (temp file + rename) to `path`.
pub fn save(path: &Path, rt: &C3Runtime, docs: &[Latents], sources: &[String]) -> Result<()> {
    ensure!(
        !docs.is_empty() && docs.len() == sources.len(),
        "nothing to write to {}",
        path.display()
    );
    let (n, d) = (docs[0].n, docs[0].dim);
    let mut bytes = Vec::with_capacity(docs.len() * n * d * 4);
    for l in docs {
        ensure!(
            l.n == n && l.dim == d,
            "latents of different shapes cannot share a file"
        );
        bytes.extend(l.data.iter().flat_map(|v| v.to_le_bytes()));
    }
    let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![docs.len(), n, d], &bytes)?;
    let tokens: Vec<usize> = docs.iter().map(|l| l.text_tokens).collect();
    let meta = HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT.to_string()),
        (KEY_MANIFEST.to_string(), rt.manifest_sha256.clone()),
        (KEY_N.to_string(), n.to_string()),
        (KEY_TOKENS.to_string(), serde_json::to_string(&tokens)?),
        (KEY_SOURCES.to_string(), serde_json::to_string(sources)?),
    ]);
    let data = serialize([("latents", view)], Some(meta))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, &data).with_context(|| path.display().to_string())?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Reads a latent file, refusing one made by a different export than `rt`'s.
pub fn load(path: &Path, rt: &C3Runtime) -> Result<LatentFile> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading latent file {}", path.display()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{}: not a latent file (safetensors)", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a latent file (safetensors)", path.display()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k).with_context(|| {
            format!(
                "{}: metadata `{k}` missing (not a c3 latent file)",
                path.display()
            )
        })
    };
    ensure!(
        get(KEY_FORMAT)? == FORMAT,
        "{}: format `{}`, expected `{FORMAT}`",
        path.display(),
        get(KEY_FORMAT)?
    );
    let hash = get(KEY_MANIFEST)?.clone();
    if hash != rt.manifest_sha256 {
        bail!(
            "{}: made by export {}…, not by this export {} ({}…); compress again with this model",
            path.display(),
            &hash[..hash.len().min(12)],
            rt.dir.display(),
            &rt.manifest_sha256[..12]
        );
    }
    let tokens: Vec<usize> = serde_json::from_str(get(KEY_TOKENS)?)?;
    let sources: Vec<String> = serde_json::from_str(get(KEY_SOURCES)?)?;
    let t = st
        .tensor("latents")
        .with_context(|| format!("{}: no `latents` tensor", path.display()))?;
    ensure!(
        t.dtype() == Dtype::F32,
        "{}: latents must be f32",
        path.display()
    );
    let (docs, n, d) = match t.shape() {
        [a, b, c] => (*a, *b, *c),
        s => bail!(
            "{}: latents have shape {s:?}, expected [docs, N, D]",
            path.display()
        ),
    };
    ensure!(
        n == rt.n_latents() && d == rt.manifest.hidden,
        "{}: latents are [{n}, {d}] per document, the export takes [{}, {}]",
        path.display(),
        rt.n_latents(),
        rt.manifest.hidden
    );
    ensure!(
        tokens.len() == docs && sources.len() == docs,
        "{}: metadata lists {} documents, the tensor {docs}",
        path.display(),
        tokens.len()
    );
    let vals: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let docs = (0..docs)
        .map(|i| Latents {
            n,
            dim: d,
            data: vals[i * n * d..(i + 1) * n * d].to_vec(),
            text_tokens: tokens[i],
        })
        .collect();
    Ok(LatentFile {
        manifest_sha256: hash,
        docs,
        sources,
    })
}
