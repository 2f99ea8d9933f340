//! The export manifest `c3-export.json` (export/CONTRACT.md): what an export folder
//! holds and how to drive it. The exporter writes it; the runtime and the TensorRT
//! builder read it and refuse folders whose manifest does not match what they expect.
//! Its identity is the sha256 of the file's bytes: latent files and engine plans
//! record that hash, so artifacts of different exports are never mixed.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DType;
use crate::error::{Error, Result};
use crate::generation::GenerationConfig;
use crate::tokenizer::SpecialTokens;

mod names;
pub use names::check_plain_name;

/// Manifest file name inside an export folder.
pub const MANIFEST_FILE: &str = "c3-export.json";
/// The `format` value this code writes and reads.
pub const MANIFEST_FORMAT: &str = "c3-export/1";

/// `c3-export.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportManifest {
    pub format: String,
    pub source: SourceInfo,
    /// The root and `llm1` configs exactly as loaded (unknown fields kept).
    pub config: ConfigPair,
    /// `fp32`, `fp16` or `bf16`: the dtype of weights, latents and the KV cache.
    pub dtype: DType,
    /// `ort` (may use ONNX Runtime contrib ops) or `tensorrt` (standard ops only).
    pub target: String,
    /// Weight-only quantization of the decoder's linear layers, if any.
    pub quantize: Option<String>,
    pub opset: i64,
    pub ir_version: i64,
    pub n_latents: usize,
    /// Longest document (model tokens) the encoder accepts.
    pub max_text_tokens: usize,
    /// The model's fixed training window (config `window_tokens`), if it has one:
    /// documents are windowed to it and shorter windows padded (crate::window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_tokens: Option<usize>,
    /// Decoder max positions (prompt + generated).
    pub max_context: usize,
    pub pad_id: u32,
    pub special_tokens: SpecialTokens,
    pub prompt: PromptInfo,
    pub generation: GenerationConfig,
    pub tokenizer: FileRef,
    pub models: Models,
    /// Decoder geometry, for KV-cache allocation.
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub hidden: usize,
    /// How `decoder.onnx` keeps its KV cache (manifests before this field: concat).
    #[serde(default)]
    pub kv_cache: KvCache,
    /// The `c3` version and flags that made this export (manifests before this
    /// field: absent). Nothing time-like: see `provenance.json` (export/CONTRACT.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<ExporterInfo>,
}

/// Which exporter made an export, and with which flags: the same checkpoint, version
/// and flags give byte-identical files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExporterInfo {
    /// `c3` / `c3-export` package version.
    pub c3_version: String,
    pub flags: ExportFlags,
}

/// The export flags as given (`kv_cache` as requested: `auto` is resolved in the
/// manifest's own `kv_cache`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFlags {
    pub dtype: String,
    pub target: String,
    pub kv_cache: String,
    pub quantize: Option<String>,
    /// `--quant-block`, `--quant-compute`, `--keep-lm-head` of a quantized export
    /// (absent otherwise, and in manifests from before these flags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantFlags>,
    /// `--allow-nonfinite`: the checkpoint's NaN/Inf weights were exported as they are
    /// (forensics only; such an export is not fit to ship).
    #[serde(default)]
    pub allow_nonfinite: bool,
    /// `--decoder-embeds-only`: the decoder takes embeddings only (no `input_ids`),
    /// so each decode step runs `embed_tokens.onnx` first.
    #[serde(default)]
    pub decoder_embeds_only: bool,
}

/// How a quantized export's MatMulNBits were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantFlags {
    pub block: usize,
    /// `int8` (accuracy_level 4) or `fp32` (accuracy_level 1).
    pub compute: String,
    /// Whether the LM head is quantized too.
    pub lm_head: bool,
}

/// The decoder's KV-cache contract (export/CONTRACT.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvCache {
    /// Standard ops: `past` `[B, kv, past_len, hd]` in, `present` = Concat(past, new)
    /// out. Every step copies the cache; what TensorRT and any ONNX runtime can run.
    #[default]
    Concat,
    /// `com.microsoft:GroupQueryAttention` over a preallocated `[B, kv, max_len, hd]`
    /// buffer that is bound as both `past` and `present`: a step writes one position
    /// in place and reads only the first `total_sequence_length` positions.
    SharedBuffer,
}

impl KvCache {
    pub fn name(self) -> &'static str {
        match self {
            KvCache::Concat => "concat",
            KvCache::SharedBuffer => "shared_buffer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The checkpoint folder's name (not its path, so the manifest is the same on
    /// every machine); `sha256` is what identifies the source.
    pub checkpoint: String,
    /// sha256 over the checkpoint's config and safetensors files (see [`checkpoint_hash`]).
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigPair {
    pub root: serde_json::Value,
    pub llm1: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptInfo {
    pub ids: Vec<u32>,
    pub latent_start: usize,
    pub template: String,
}

/// A file in the export folder and its sha256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Models {
    pub encoder: ModelInfo,
    pub decoder: ModelInfo,
    pub embed_tokens: ModelInfo,
}

/// One ONNX model of the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub file: String,
    pub sha256: String,
    pub data_file: Option<String>,
    pub data_bytes: u64,
    /// sha256 of the data file, hashed once at export: loading checks its size only,
    /// unless asked to check everything ([`FileCheck::Full`]). Absent in manifests
    /// from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    pub inputs: Vec<IoSpec>,
    pub outputs: Vec<IoSpec>,
    /// Operator types used, with their domain (`com.microsoft:MatMulNBits`).
    pub op_types: Vec<String>,
}

/// A graph input or output: name, dtype (`float32`, `int64`, ...) and shape, with
/// symbolic dims as strings (`"batch"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoSpec {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<serde_json::Value>,
}

/// How much of an export's files a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileCheck {
    /// What a load reads: graphs it opens and the tokenizer by hash, data by size
    /// (seconds saved per GB of weights, which ONNX Runtime maps as they are).
    Quick,
    /// Every file by hash (`--verify-files`; building engines).
    Full,
}

impl ExportManifest {
    /// Whether the decoder takes `input_ids` beside `inputs_embeds` (exports since
    /// the one-run decode step) rather than embeddings only.
    pub fn decoder_takes_ids(&self) -> bool {
        crate::contract::takes_ids(&self.models.decoder.inputs)
    }

    /// How this export's documents are windowed (`window`: an override of the length).
    pub fn window_plan(&self, window: Option<usize>) -> Result<crate::WindowPlan> {
        crate::WindowPlan::new(
            window,
            self.window_tokens,
            self.max_text_tokens,
            self.pad_id,
        )
    }

    /// Reads `DIR/c3-export.json`, checking the format, and returns it with its hash.
    pub fn load(dir: &Path) -> Result<(Self, String)> {
        let path = dir.join(MANIFEST_FILE);
        if !dir.is_dir() {
            return Err(Error::Input(format!(
                "export folder {} does not exist (make one with `c3 export CKPT --out DIR`)",
                dir.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::Input(format!(
                "{}: cannot read the export manifest ({e}); is {} an export folder made by `c3 export`?",
                path.display(),
                dir.display()
            ))
        })?;
        let m: ExportManifest = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(Error::config(
                &path,
                format!(
                    "format is `{}`, this build reads `{MANIFEST_FORMAT}`",
                    m.format
                ),
            ));
        }
        m.check_file_names(dir)?;
        Ok((m, sha256_hex(&bytes)))
    }

    /// Refuses file names that are not plain names inside `dir` (`..`, separators,
    /// absolute paths, symlinks leaving it): the manifest is untrusted input, and a
    /// byte-identical copy elsewhere would pass the hash checks. Opens nothing.
    pub fn check_file_names(&self, dir: &Path) -> Result<()> {
        check_plain_name(dir, "tokenizer.file", &self.tokenizer.file)?;
        for (name, m) in [
            ("encoder", &self.models.encoder),
            ("decoder", &self.models.decoder),
            ("embed_tokens", &self.models.embed_tokens),
        ] {
            check_plain_name(dir, &format!("models.{name}.file"), &m.file)?;
            if let Some(d) = &m.data_file {
                check_plain_name(dir, &format!("models.{name}.data_file"), d)?;
            }
        }
        Ok(())
    }

    /// Writes the manifest atomically into `dir` and returns its hash.
    pub fn save(&self, dir: &Path) -> Result<String> {
        let path = dir.join(MANIFEST_FILE);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        let tmp = dir.join(format!(".{MANIFEST_FILE}.partial-{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(sha256_hex(&bytes))
    }

    /// Checks the export's files against the manifest: names first, then, at
    /// [`FileCheck::Quick`] (a load), the encoder's and decoder's graphs and the
    /// tokenizer by hash and every data file by size; `embed_tokens.onnx` is left to
    /// [`Self::verify_model`] when (if ever) it is opened. [`FileCheck::Full`] also
    /// hashes it and every data file whose hash the manifest records.
    pub fn verify_files(&self, dir: &Path, check: FileCheck) -> Result<()> {
        self.check_file_names(dir)?;
        let m = &self.models;
        for (model, level) in [
            (&m.encoder, FileCheck::Quick),
            (&m.decoder, FileCheck::Quick),
            (&m.embed_tokens, FileCheck::Full),
        ] {
            if check >= level {
                self.verify_model(dir, model, check)?;
            }
        }
        let tpath = dir.join(&self.tokenizer.file);
        let got = sha256_file(&tpath)?;
        if got != self.tokenizer.sha256 {
            return Err(Error::Input(format!(
                "{}: sha256 differs from the manifest's (tokenizer replaced after export)",
                tpath.display()
            )));
        }
        Ok(())
    }

    /// Checks one model's graph by hash and its data file by size, and at
    /// [`FileCheck::Full`] by hash too (where recorded).
    pub fn verify_model(&self, dir: &Path, m: &ModelInfo, check: FileCheck) -> Result<()> {
        m.verify(dir, check)
    }
}

impl ModelInfo {
    /// Checks this model's graph in `dir` by hash and its data file by size, and at
    /// [`FileCheck::Full`] by hash too (where recorded).
    pub fn verify(&self, dir: &Path, check: FileCheck) -> Result<()> {
        let m = self;
        let path = dir.join(&m.file);
        let got = sha256_file(&path)?;
        if got != m.sha256 {
            return Err(Error::Input(format!(
                "{}: sha256 {got} differs from the manifest's {} (file changed or truncated since export)",
                path.display(),
                m.sha256
            )));
        }
        let Some(d) = &m.data_file else {
            return Ok(());
        };
        let dpath = dir.join(d);
        let len = std::fs::metadata(&dpath)
            .map_err(|e| Error::io(&dpath, e))?
            .len();
        if len != m.data_bytes {
            return Err(Error::Input(format!(
                "{}: {len} bytes, the manifest says {} (truncated?)",
                dpath.display(),
                m.data_bytes
            )));
        }
        if let (FileCheck::Full, Some(want)) = (check, &m.data_sha256) {
            let got = sha256_file(&dpath)?;
            if &got != want {
                return Err(Error::Input(format!(
                    "{}: sha256 {got} differs from the manifest's {want} (weights changed since export)",
                    dpath.display()
                )));
            }
        }
        Ok(())
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// sha256 identifying a checkpoint: over the sorted relative paths and contents of its
/// `config.json` and `*.safetensors`/index files in the root and `llm1/`.
pub fn checkpoint_hash(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    for sub in ["", crate::config::ENCODER_DIR] {
        let d = dir.join(sub);
        let rd = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(&d, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = name == crate::config::CONFIG_FILE
                || name.ends_with(".safetensors")
                || name.ends_with(".safetensors.index.json");
            if keep && entry.path().is_file() {
                files.push(if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                });
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for rel in files {
        h.update(rel.as_bytes());
        h.update(sha256_file(&dir.join(&rel))?.as_bytes());
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn missing_manifest_names_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ExportManifest::load(dir.path())
            .expect_err("no manifest")
            .to_string();
        assert!(
            err.contains(MANIFEST_FILE) && err.contains("c3 export"),
            "{err}"
        );
    }
}
