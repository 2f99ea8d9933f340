//! `c3 export` / `c3-export`: checkpoint in, export folder out (three ONNX models,
//! the tokenizer and `c3-export.json`). The folder is staged beside its destination
//! and renamed into place last, so an interrupted export never leaves a folder that
//! a consumer would load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use c3_core::manifest::{
    ConfigPair, ExportManifest, FileRef, IoSpec, MANIFEST_FORMAT, ModelInfo, Models, PromptInfo,
    SourceInfo, SpecialIds, checkpoint_hash, sha256_file,
};
use c3_core::{C3Tokenizer, Checkpoint, DecoderPrompt, GenerationConfig, KvCache, PromptTemplate};
use c3_onnx::proto::{ModelProto, ValueInfoProto, tensor_shape_proto, type_proto};
use c3_onnx::{DType, WriteOptions, WriteSummary};
use serde::Serialize;

use crate::args::{ExportArgs, ExportDtype, Target};
use crate::graphs;
use crate::weights::Weights;

/// What an export produced (printed with `--json`).
#[derive(Debug, Serialize)]
pub struct ExportReport {
    pub out: PathBuf,
    pub manifest_sha256: String,
    pub checkpoint_sha256: String,
    pub dtype: String,
    pub target: String,
    pub kv_cache: String,
    pub files: Vec<FileSize>,
    pub seconds: f64,
    pub verify: Option<crate::verify::VerifyReport>,
}

#[derive(Debug, Serialize)]
pub struct FileSize {
    pub file: String,
    pub bytes: u64,
}

/// Runs the export described by `args` (and the verification if asked).
pub fn run(args: &ExportArgs) -> Result<ExportReport> {
    let t0 = Instant::now();
    if args.quantize.is_some() && args.target == Target::Tensorrt {
        bail!(
            "--quantize needs --target ort, not --target tensorrt (MatMulNBits is an ONNX Runtime contrib op; TensorRT takes standard ops only)"
        );
    }
    let ck = Checkpoint::open(&args.checkpoint)
        .with_context(|| format!("checkpoint {}", args.checkpoint.display()))?;
    let tokenizer = C3Tokenizer::from_dir(&args.checkpoint)?;
    tokenizer
        .specials()
        .check_config(&ck.config, tokenizer.path())?;
    let ck_hash = checkpoint_hash(&args.checkpoint)?;
    let cfg = ck.config.clone();
    let kv_cache = args.kv_cache(cfg.decoder.head_dim())?;
    let dtype = args.dtype.onnx();
    if args.quantize.is_some() && args.dtype == ExportDtype::Bf16 {
        bail!("--quantize works with --dtype fp32 or fp16 (MatMulNBits has no bf16 kernel)");
    }
    let weights = Weights::new(Arc::new(ck), dtype, args.quantize.map(|q| q.bits()));

    let staging = staging_dir(&args.out)?;
    let result = write_all(
        args,
        &weights,
        &tokenizer,
        &ck_hash,
        kv_cache,
        staging.path(),
    );
    let manifest_sha256 = result?;
    publish(staging, &args.out)?;

    let (manifest, _) = ExportManifest::load(&args.out)?;
    let mut files = Vec::new();
    for m in [
        &manifest.models.encoder,
        &manifest.models.decoder,
        &manifest.models.embed_tokens,
    ] {
        files.push(FileSize {
            file: m.file.clone(),
            bytes: file_len(&args.out.join(&m.file))?,
        });
        if let Some(d) = &m.data_file {
            files.push(FileSize {
                file: d.clone(),
                bytes: m.data_bytes,
            });
        }
    }
    let verify = if args.verify {
        Some(crate::verify::verify(&args.checkpoint, &args.out, &cfg)?)
    } else {
        None
    };
    Ok(ExportReport {
        out: args.out.clone(),
        manifest_sha256,
        checkpoint_sha256: ck_hash,
        dtype: args.dtype.name().into(),
        target: args.target.name().into(),
        kv_cache: kv_cache.name().into(),
        files,
        seconds: t0.elapsed().as_secs_f64(),
        verify,
    })
}

fn file_len(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| p.display().to_string())?
        .len())
}

/// Writes models, tokenizer and manifest into `dir`; returns the manifest hash.
fn write_all(
    args: &ExportArgs,
    w: &Weights,
    tok: &C3Tokenizer,
    ck_hash: &str,
    kv_cache: KvCache,
    dir: &Path,
) -> Result<String> {
    let cfg = &w.checkpoint().config;
    let sp = tok.specials();
    let opts = WriteOptions::default();
    let enc = write_model(
        graphs::encoder(cfg, w, sp.img_start)?,
        dir,
        "encoder.onnx",
        &opts,
        args,
        ck_hash,
    )?;
    let dec = write_model(
        graphs::decoder(cfg, w, kv_cache)?,
        dir,
        "decoder.onnx",
        &opts,
        args,
        ck_hash,
    )?;
    let emb = write_model(
        graphs::embed_tokens(cfg, w)?,
        dir,
        "embed_tokens.onnx",
        &opts,
        args,
        ck_hash,
    )?;

    let tok_name = tok
        .path()
        .file_name()
        .context("tokenizer path has no file name")?
        .to_owned();
    let tok_dest = dir.join(&tok_name);
    std::fs::copy(tok.path(), &tok_dest)
        .with_context(|| format!("copying {}", tok.path().display()))?;

    let template = PromptTemplate::default();
    let prompt = DecoderPrompt::build(tok, cfg.n_latents(), &template)?;
    let read_cfg = |p: PathBuf| -> Result<serde_json::Value> {
        let bytes = std::fs::read(&p).with_context(|| p.display().to_string())?;
        serde_json::from_slice(&bytes).with_context(|| p.display().to_string())
    };
    let dec_cfg = &cfg.decoder;
    let manifest = ExportManifest {
        format: MANIFEST_FORMAT.into(),
        source: SourceInfo {
            checkpoint: args.checkpoint.display().to_string(),
            sha256: ck_hash.into(),
        },
        config: ConfigPair {
            root: read_cfg(args.checkpoint.join("config.json"))?,
            llm1: read_cfg(args.checkpoint.join("llm1").join("config.json"))?,
        },
        dtype: args.dtype.name().into(),
        target: args.target.name().into(),
        quantize: args.quantize.map(|q| q.name().into()),
        opset: c3_onnx::DEFAULT_OPSET,
        ir_version: c3_onnx::IR_VERSION,
        n_latents: cfg.n_latents(),
        max_text_tokens: cfg.max_text_tokens(),
        window_tokens: cfg.c3.window_tokens,
        max_context: dec_cfg.max_position_embeddings,
        pad_id: sp.endoftext,
        special_tokens: SpecialIds {
            endoftext: sp.endoftext,
            im_start: sp.im_start,
            im_end: sp.im_end,
            img_start: sp.img_start,
            img_end: sp.img_end,
            img_pad: sp.img_pad,
        },
        prompt: PromptInfo {
            ids: prompt.ids.clone(),
            latent_start: prompt.latent_start,
            template: template.render(),
        },
        generation: GenerationConfig::reference(sp.stop_ids()),
        tokenizer: FileRef {
            file: tok_name.to_string_lossy().into_owned(),
            sha256: sha256_file(&tok_dest)?,
        },
        models: Models {
            encoder: enc,
            decoder: dec,
            embed_tokens: emb,
        },
        layers: dec_cfg.num_hidden_layers,
        kv_heads: dec_cfg.num_key_value_heads,
        head_dim: dec_cfg.head_dim(),
        vocab: dec_cfg.vocab_size,
        hidden: dec_cfg.hidden_size,
        kv_cache,
    };
    Ok(manifest.save(dir)?)
}

fn write_model(
    mut model: c3_onnx::Model,
    dir: &Path,
    file: &str,
    opts: &WriteOptions,
    args: &ExportArgs,
    ck_hash: &str,
) -> Result<ModelInfo> {
    model.set_producer("c3-export", env!("CARGO_PKG_VERSION"));
    model.add_metadata("c3.checkpoint_sha256", ck_hash);
    model.add_metadata("c3.dtype", args.dtype.name());
    model.add_metadata("c3.target", args.target.name());
    let path = dir.join(file);
    let summary: WriteSummary = model
        .write_with(&path, opts)
        .with_context(|| format!("writing {file}"))?;
    // Read the written graph back (initializers stay external): the manifest describes
    // what is on disk, not what we meant to write.
    let proto = c3_onnx::load_model(&path)?;
    let io = |v: &[ValueInfoProto]| v.iter().map(io_spec).collect::<Vec<_>>();
    let graph = proto.graph.as_ref().context("written model has no graph")?;
    Ok(ModelInfo {
        file: file.into(),
        sha256: sha256_file(&path)?,
        data_file: summary.data_path.as_ref().map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        }),
        data_bytes: summary.data_bytes,
        inputs: io(&graph.input),
        outputs: io(&graph.output),
        op_types: op_list(&proto),
    })
}

fn op_list(proto: &ModelProto) -> Vec<String> {
    c3_onnx::op_types(proto)
        .into_iter()
        .map(|(d, op)| {
            if c3_onnx::is_standard_domain(&d) {
                op
            } else {
                format!("{d}:{op}")
            }
        })
        .collect()
}

fn io_spec(v: &ValueInfoProto) -> IoSpec {
    let (mut dtype, mut shape) = ("unknown".to_string(), Vec::new());
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
    {
        if let Some(d) = t.elem_type.and_then(DType::from_onnx) {
            dtype = onnx_dtype_name(d).into();
        }
        for dim in t.shape.iter().flat_map(|s| &s.dim) {
            shape.push(match &dim.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(n)) => serde_json::json!(n),
                Some(tensor_shape_proto::dimension::Value::DimParam(s)) => serde_json::json!(s),
                None => serde_json::Value::Null,
            });
        }
    }
    IoSpec {
        name: v.name.clone().unwrap_or_default(),
        dtype,
        shape,
    }
}

/// numpy-style dtype names for the manifest (`float32`, `int64`, ...).
pub fn onnx_dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::I64 => "int64",
        DType::I32 => "int32",
        DType::Bool => "bool",
        _ => d.name(),
    }
}

/// A staging folder beside `out` (same filesystem, so the final rename is atomic).
fn staging_dir(out: &Path) -> Result<tempfile::TempDir> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = out
        .file_name()
        .context("--out needs a folder name")?
        .to_string_lossy()
        .into_owned();
    Ok(tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a staging folder in {}", parent.display()))?)
}

/// Moves the staged folder to `out`. An existing export there is replaced (release
/// pipelines re-run); any other non-empty folder is refused rather than deleted.
fn publish(staging: tempfile::TempDir, out: &Path) -> Result<()> {
    if out.exists() {
        let empty = out.is_dir() && std::fs::read_dir(out)?.next().is_none();
        if !empty && !out.join(c3_core::MANIFEST_FILE).is_file() {
            bail!(
                "{} exists and is not an export folder (no {}); refusing to overwrite it",
                out.display(),
                c3_core::MANIFEST_FILE
            );
        }
        std::fs::remove_dir_all(out)
            .with_context(|| format!("removing the old export {}", out.display()))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, out)
        .with_context(|| format!("moving the export into {}", out.display()))?;
    Ok(())
}

impl ExportDtype {
    pub fn onnx(self) -> DType {
        match self {
            ExportDtype::Fp32 => DType::F32,
            ExportDtype::Fp16 => DType::F16,
            ExportDtype::Bf16 => DType::BF16,
        }
    }
}

/// Prints the report: JSON on stdout with `json`, else a short human summary.
pub fn print_report(r: &ExportReport, json: bool) {
    if json {
        match serde_json::to_string_pretty(r) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot serialise the report: {e}"),
        }
        return;
    }
    println!(
        "exported {} ({}, target {}, kv cache {}) in {:.1}s",
        r.out.display(),
        r.dtype,
        r.target,
        r.kv_cache,
        r.seconds
    );
    for f in &r.files {
        println!("  {:<24} {:>14} bytes", f.file, f.bytes);
    }
    println!("  manifest sha256 {}", r.manifest_sha256);
    if let Some(v) = &r.verify {
        println!("{v}");
    }
}
