//! `c3 export` / `c3-export`: checkpoint in, export folder out (three ONNX models,
//! the tokenizer, `c3-export.json` and `provenance.json`). Release-pipeline rules:
//! the checkpoint's weights are scanned first (NaN/Inf/overflow refused); the folder
//! is staged beside `--out` and renamed into place only when complete and verified
//! ([`c3_core::staging`]); the ONNX files and manifest hold nothing time- or
//! machine-dependent, so the same checkpoint and flags give the same bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use c3_core::checkpoint::{HealthReport, health};
use c3_core::manifest::{
    ConfigPair, ExportFlags, ExportManifest, ExporterInfo, FileRef, IoSpec, MANIFEST_FORMAT,
    ModelInfo, Models, PromptInfo, QuantFlags, SourceInfo, checkpoint_hash, sha256_file,
};
use c3_core::{
    C3Tokenizer, Checkpoint, DType, DecoderPrompt, GenerationConfig, KvCache, PromptTemplate,
};
use c3_onnx::proto::{ModelProto, ValueInfoProto, tensor_shape_proto, type_proto};
use c3_onnx::{ElemType, WriteOptions, WriteSummary};
use serde::Serialize;

use crate::error::{ExportError, Result, ResultExt};
use crate::graphs;
use crate::options::{ExportOptions, Target};
use crate::progress::{Progress, Silent};
use crate::provenance::Provenance;
use crate::weights::Weights;
use c3_core::staging::{EXPORT, Staging, check_out};

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
    /// The weight scan; `bad` is non-empty only with `--allow-nonfinite`.
    pub health: HealthReport,
    pub verify: Option<crate::verify::VerifyReport>,
}

#[derive(Debug, Serialize)]
pub struct FileSize {
    pub file: String,
    pub bytes: u64,
}

/// Runs the export described by `args` (and the verification if asked).
pub fn run(args: &ExportOptions) -> Result<ExportReport> {
    run_with(args, Arc::new(Silent))
}

/// [`run`], reporting progress to `progress`.
pub fn run_with(args: &ExportOptions, progress: Arc<dyn Progress>) -> Result<ExportReport> {
    let result = export(args, &progress);
    progress.finished();
    result
}

fn export(args: &ExportOptions, progress: &Arc<dyn Progress>) -> Result<ExportReport> {
    let t0 = Instant::now();
    let started = std::time::SystemTime::now();
    if args.quantize.is_some() && args.target == Target::Tensorrt {
        return Err(ExportError::input(
            "--quantize needs --target ort, not --target tensorrt (MatMulNBits is an ONNX Runtime contrib op; TensorRT takes standard ops only)",
        ));
    }
    if args.quantize.is_some() && args.dtype == DType::BF16 {
        return Err(ExportError::input(
            "--quantize works with --dtype fp32 or fp16 (MatMulNBits has no bf16 kernel)",
        ));
    }
    // Before minutes of work: an --out that will be refused at the end is refused now.
    check_out(&args.out, EXPORT, args.force)?;
    let ck = Checkpoint::open(&args.checkpoint)
        .with_context(|| format!("checkpoint {}", args.checkpoint.display()))?;
    let tokenizer = C3Tokenizer::from_dir(&args.checkpoint)?;
    tokenizer
        .specials()
        .check_config(&ck.config, tokenizer.path())?;
    let cfg = ck.config.clone();
    let kv_cache = args.kv_cache(cfg.decoder.head_dim())?;

    let health = scan_weights(&ck, args.dtype, progress.as_ref());
    if !health.is_healthy() && !args.allow_nonfinite {
        return Err(ExportError::Unhealthy {
            checkpoint: args.checkpoint.clone(),
            report: Box::new(health),
        });
    }
    let ck_hash = checkpoint_hash(&args.checkpoint)?;
    let weights = Weights::new(Arc::new(ck), args.dtype, args.quant_spec())
        .with_fused_norms(args.target == Target::Ort)
        .with_progress(Arc::clone(progress));

    let staging = Staging::create(&args.out)?;
    let manifest_sha256 = write_all(
        args,
        &weights,
        &tokenizer,
        &ck_hash,
        kv_cache,
        staging.path(),
        progress.as_ref(),
    )?;
    let verify = if args.verify {
        progress.verify_started();
        let report = crate::verify::verify(&args.checkpoint, staging.path(), &cfg)?;
        if !report.pass {
            // `staging` drops here: nothing is left at --out or beside it.
            return Err(ExportError::Verify {
                report: Box::new(report),
            });
        }
        Some(report)
    } else {
        None
    };
    let seconds = t0.elapsed().as_secs_f64();
    Provenance::new(args, &manifest_sha256, started, seconds, verify.as_ref())
        .save(staging.path())?;
    let (manifest, _) = ExportManifest::load(staging.path())?;
    let files = file_sizes(&manifest, staging.path())?;
    staging.publish(&args.out, EXPORT, args.force)?;
    Ok(ExportReport {
        out: args.out.clone(),
        manifest_sha256,
        checkpoint_sha256: ck_hash,
        dtype: args.dtype.name().into(),
        target: args.target.name().into(),
        kv_cache: kv_cache.name().into(),
        files,
        seconds,
        health,
        verify,
    })
}

/// Scans every checkpoint tensor for values the export dtype cannot carry.
fn scan_weights(ck: &Checkpoint, dtype: DType, progress: &dyn Progress) -> HealthReport {
    let mut started = false;
    health::scan(ck, dtype, &mut |done, total| {
        if !started {
            progress.scan_started(total);
            started = true;
        }
        progress.scanned(done);
    })
}

fn file_sizes(manifest: &ExportManifest, dir: &Path) -> Result<Vec<FileSize>> {
    let mut files = Vec::new();
    for m in [
        &manifest.models.encoder,
        &manifest.models.decoder,
        &manifest.models.embed_tokens,
    ] {
        files.push(FileSize {
            file: m.file.clone(),
            bytes: file_len(&dir.join(&m.file))?,
        });
        if let Some(d) = &m.data_file {
            files.push(FileSize {
                file: d.clone(),
                bytes: m.data_bytes,
            });
        }
    }
    Ok(files)
}

/// Test hook, compiled into debug builds only (release binaries cannot be made to
/// fail on purpose): `C3_EXPORT_FAULT=fail-after-<point>` fails the export there,
/// `abort-after-<point>` aborts the process there, as a kill would (no cleanup runs).
fn inject_fault(point: &str) -> Result<()> {
    #[cfg(debug_assertions)]
    if let Ok(fault) = std::env::var("C3_EXPORT_FAULT") {
        if fault == format!("fail-after-{point}") {
            return Err(ExportError::input(format!(
                "injected failure after {point} (C3_EXPORT_FAULT)"
            )));
        }
        if fault == format!("abort-after-{point}") {
            std::process::abort();
        }
    }
    let _ = point;
    Ok(())
}

fn file_len(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| p.display().to_string())?
        .len())
}

/// The checkpoint folder's name for the manifest: never its path, which differs
/// between machines.
fn checkpoint_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_owned())
        .or_else(|| dir.canonicalize().ok()?.file_name().map(|n| n.to_owned()))
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes models, tokenizer and manifest into `dir`; returns the manifest hash.
/// All three graphs are built first (weights stay lazy) so progress knows the total.
fn write_all(
    args: &ExportOptions,
    w: &Weights,
    tok: &C3Tokenizer,
    ck_hash: &str,
    kv_cache: KvCache,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<String> {
    let cfg = &w.checkpoint().config;
    let sp = tok.specials();
    let opts = WriteOptions::default();
    let models = [
        (
            "encoder.onnx",
            graphs::encoder(
                cfg,
                w,
                sp.img_start,
                args.fused_encoder_attention(cfg.encoder.head_dim()),
            )?,
        ),
        (
            "decoder.onnx",
            graphs::decoder(cfg, w, kv_cache, !args.decoder_embeds_only)?,
        ),
        ("embed_tokens.onnx", graphs::embed_tokens(cfg, w)?),
    ];
    let bytes = models
        .iter()
        .map(|(_, m)| m.initializer_bytes())
        .sum::<u64>();
    // The weights and a copy of the tokenizer; graphs and manifest are small beside them.
    let needed = bytes + std::fs::metadata(tok.path()).map_or(0, |m| m.len());
    c3_core::room::check(&args.out, "the export", needed)?;
    let room = |e: ExportError| c3_core::room::annotate(e, &args.out, "the export", needed);
    progress.write_started(w.counters().registered.load(Ordering::Relaxed), bytes);
    let mut infos = Vec::new();
    for (file, model) in models {
        let c = w.counters();
        let before = (
            c.written.load(Ordering::Relaxed),
            c.written_bytes.load(Ordering::Relaxed),
        );
        let info = write_model(model, dir, file, &opts, args, ck_hash).map_err(room)?;
        progress.model_written(
            file,
            c.written.load(Ordering::Relaxed) - before.0,
            c.written_bytes.load(Ordering::Relaxed) - before.1,
        );
        inject_fault(file.trim_end_matches(".onnx"))?;
        infos.push(info);
    }
    let [enc, dec, emb]: [ModelInfo; 3] = infos
        .try_into()
        .map_err(|_| ExportError::input("internal: expected three models"))?;

    let tok_name = tok
        .path()
        .file_name()
        .ok_or_else(|| {
            ExportError::input(format!(
                "tokenizer path {} has no file name",
                tok.path().display()
            ))
        })?
        .to_owned();
    let tok_dest = dir.join(&tok_name);
    std::fs::copy(tok.path(), &tok_dest)
        .with_context(|| format!("copying {}", tok.path().display()))
        .map_err(room)?;

    // The reconstruction prompt of the release, or the task the model was trained
    // to answer after its latents (`--prompt`): the runtime serves what this records.
    let template = match &args.prompt {
        Some(task) => PromptTemplate::default().with_task(task)?,
        None => PromptTemplate::default(),
    };
    let prompt = DecoderPrompt::build(tok, cfg.n_latents(), &template)?;
    let read_cfg = |p: PathBuf| -> Result<serde_json::Value> {
        let bytes = std::fs::read(&p).with_context(|| p.display().to_string())?;
        serde_json::from_slice(&bytes).with_context(|| p.display().to_string())
    };
    let dec_cfg = &cfg.decoder;
    let manifest = ExportManifest {
        format: MANIFEST_FORMAT.into(),
        source: SourceInfo {
            checkpoint: checkpoint_name(&args.checkpoint),
            sha256: ck_hash.into(),
        },
        config: ConfigPair {
            root: read_cfg(args.checkpoint.join("config.json"))?,
            llm1: read_cfg(args.checkpoint.join("llm1").join("config.json"))?,
        },
        dtype: args.dtype,
        target: args.target.name().into(),
        quantize: args.quantize.map(|q| q.name().into()),
        opset: c3_onnx::DEFAULT_OPSET,
        ir_version: c3_onnx::IR_VERSION,
        n_latents: cfg.n_latents(),
        max_text_tokens: cfg.max_text_tokens(),
        window_tokens: cfg.c3.window_tokens,
        max_context: dec_cfg.max_position_embeddings,
        pad_id: sp.endoftext,
        special_tokens: *sp,
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
        exporter: Some(ExporterInfo {
            c3_version: env!("CARGO_PKG_VERSION").into(),
            flags: ExportFlags {
                dtype: args.dtype.name().into(),
                target: args.target.name().into(),
                kv_cache: args.kv_cache.name().into(),
                quantize: args.quantize.map(|q| q.name().into()),
                quantization: args.quant_spec().map(|spec| QuantFlags {
                    block: spec.block,
                    compute: args.quant_compute.name().into(),
                    lm_head: !args.keep_lm_head,
                }),
                allow_nonfinite: args.allow_nonfinite,
                decoder_embeds_only: args.decoder_embeds_only,
            },
        }),
    };
    manifest.save(dir).map_err(|e| room(e.into()))
}

fn write_model(
    mut model: c3_onnx::Model,
    dir: &Path,
    file: &str,
    opts: &WriteOptions,
    args: &ExportOptions,
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
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| ExportError::input("written model has no graph"))?;
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
        // Hashed once here, so loads can check sizes only (`--verify-files` rehashes).
        data_sha256: summary
            .data_path
            .as_ref()
            .map(|p| sha256_file(p))
            .transpose()?,
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
        if let Some(d) = t.elem_type.and_then(ElemType::from_onnx) {
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
pub fn onnx_dtype_name(d: ElemType) -> &'static str {
    match d {
        ElemType::F32 => "float32",
        ElemType::F16 => "float16",
        ElemType::BF16 => "bfloat16",
        ElemType::I64 => "int64",
        ElemType::I32 => "int32",
        ElemType::Bool => "bool",
        _ => d.name(),
    }
}

/// Prints the report: JSON on stdout with `json`, else a short human summary.
pub fn print_report(r: &ExportReport, json: bool) {
    if !r.health.is_healthy() {
        eprintln!(
            "warning: exported with --allow-nonfinite (forensics only, not fit to ship): {}",
            r.health
        );
    }
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

/// Prints a failure: one `error:` line on stderr and, with `json`, one JSON object on
/// stdout (`{"error", "kind"[, "verify"]}`); returns the exit code for its kind.
pub fn print_error(e: &ExportError, json: bool) -> i32 {
    eprintln!("error: {}", e.one_line());
    if json {
        println!("{}", e.to_json());
    }
    e.kind().exit_code()
}
