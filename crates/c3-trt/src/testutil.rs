//! Test fixtures: a small export manifest with the real input names and symbolic dims,
//! tiny ONNX graphs carrying those inputs, and a plan built for a given GPU.

use std::path::Path;

use c3_core::ExportManifest;
use c3_core::manifest::{ConfigPair, FileRef, IoSpec, ModelInfo, Models, PromptInfo, SourceInfo};
use c3_onnx::{Dim, ElemType, GraphBuilder, MS_DOMAIN};
use serde_json::json;

use crate::gpu::GpuInfo;
use crate::plan::{EngineEntry, PLAN_FORMAT, PlanManifest};
use crate::profiles::{ProfileOptions, ProfileSet, derive_profiles};

fn io(name: &str, dtype: &str, shape: serde_json::Value) -> IoSpec {
    let shape = shape.as_array().cloned().unwrap_or_default();
    IoSpec {
        name: name.into(),
        dtype: dtype.into(),
        shape,
    }
}

fn model(file: &str, inputs: Vec<IoSpec>) -> ModelInfo {
    ModelInfo {
        file: file.into(),
        sha256: String::new(),
        data_file: None,
        data_bytes: 0,
        data_sha256: None,
        inputs,
        outputs: Vec::new(),
        op_types: Vec::new(),
    }
}

/// Geometry: 2 layers, 2 KV heads of dim 8, hidden 16, documents up to 64 tokens, a
/// 12-token prompt, context 256.
pub fn manifest(dtype: &str, target: &str) -> ExportManifest {
    let float = c3_core::DType::parse(dtype).map_or("float32", c3_core::DType::torch_name);
    let mut dec = vec![
        io("inputs_embeds", float, json!(["batch", "seq", 16])),
        io("attention_mask", "int64", json!(["batch", "total_len"])),
        io("position_ids", "int64", json!(["batch", "seq"])),
    ];
    for i in 0..2 {
        for kv in ["key", "value"] {
            dec.push(io(
                &format!("past_key_values.{i}.{kv}"),
                float,
                json!(["batch", 2, "past_len", 8]),
            ));
        }
    }
    ExportManifest {
        format: c3_core::manifest::MANIFEST_FORMAT.into(),
        source: SourceInfo {
            checkpoint: "/ckpt/c3-tiny".into(),
            sha256: "0".repeat(64),
        },
        config: ConfigPair {
            root: json!({}),
            llm1: json!({}),
        },
        dtype: c3_core::DType::parse(dtype).expect("fp32, fp16 or bf16"),
        target: target.into(),
        quantize: None,
        opset: 21,
        ir_version: 10,
        n_latents: 4,
        max_text_tokens: 64,
        window_tokens: None,
        max_context: 256,
        pad_id: 0,
        special_tokens: c3_core::SpecialTokens {
            endoftext: 0,
            im_start: 1,
            im_end: 2,
            img_start: 3,
            img_end: 4,
            img_pad: 5,
        },
        prompt: PromptInfo {
            ids: (0..12).collect(),
            latent_start: 3,
            template: String::new(),
        },
        generation: c3_core::GenerationConfig::reference(vec![0]),
        tokenizer: FileRef {
            file: "tokenizer.json".into(),
            sha256: String::new(),
        },
        models: Models {
            encoder: model(
                "encoder.onnx",
                vec![
                    io("input_ids", "int64", json!(["batch", "text_len"])),
                    io("attention_mask", "int64", json!(["batch", "text_len"])),
                ],
            ),
            decoder: model("decoder.onnx", dec),
            embed_tokens: model(
                "embed_tokens.onnx",
                vec![io("input_ids", "int64", json!(["batch", "seq"]))],
            ),
        },
        layers: 2,
        kv_heads: 2,
        head_dim: 8,
        vocab: 32,
        hidden: 16,
        kv_cache: c3_core::KvCache::Concat,
        exporter: None,
    }
}

/// Which export to write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Standard ops only (`--target tensorrt`).
    Clean,
    /// The decoder uses `com.microsoft:MatMulNBits` (`--target ort`).
    Contrib,
}

fn dims(spec: &IoSpec) -> Vec<Dim> {
    spec.shape
        .iter()
        .map(|d| match d {
            serde_json::Value::String(s) => Dim::sym(s.clone()),
            v => Dim::Fixed(v.as_i64().unwrap_or(1)),
        })
        .collect()
}

fn dtype(s: &str) -> ElemType {
    match s {
        "int64" => ElemType::I64,
        "float16" => ElemType::F16,
        "bfloat16" => ElemType::BF16,
        _ => ElemType::F32,
    }
}

/// Writes a fp16 export (manifest with real file hashes, tiny graphs, a tokenizer
/// stand-in) into `dir` and returns its manifest.
pub fn write_export(dir: &Path, variant: Variant) -> anyhow::Result<ExportManifest> {
    let target = if variant == Variant::Contrib {
        "ort"
    } else {
        "tensorrt"
    };
    let mut m = manifest("fp16", target);
    for info in [
        &mut m.models.encoder,
        &mut m.models.decoder,
        &mut m.models.embed_tokens,
    ] {
        let mut g = GraphBuilder::new(info.file.trim_end_matches(".onnx"));
        let mut names = Vec::new();
        for i in &info.inputs {
            names.push(g.input(&i.name, dtype(&i.dtype), &dims(i))?);
        }
        // One op on the first input stands in for the network.
        let first = &info.inputs[0];
        let mut y = g.node("Identity", &[&names[0]]).output()?;
        if variant == Variant::Contrib && info.file == "decoder.onnx" {
            y = g.node("MatMulNBits", &[&y]).domain(MS_DOMAIN).output()?;
        }
        g.output(&y, dtype(&first.dtype), &dims(first))?;
        let path = dir.join(&info.file);
        g.finish().write(&path)?;
        info.sha256 = c3_core::manifest::sha256_file(&path)?;
    }
    std::fs::write(dir.join("tokenizer.json"), b"{}")?;
    m.tokenizer.sha256 = c3_core::manifest::sha256_file(&dir.join("tokenizer.json"))?;
    m.save(dir)?;
    Ok(m)
}

/// A plan for the test manifest built on `gpu` with TensorRT `trt`.
pub fn plan_for(export_hash: &str, gpu: &GpuInfo, trt: &str) -> PlanManifest {
    let m = manifest("fp16", "tensorrt");
    let profiles =
        derive_profiles(&m, ProfileSet::Both, &ProfileOptions::default()).unwrap_or_default();
    PlanManifest {
        format: PLAN_FORMAT.into(),
        c3_version: "test".into(),
        model_id: "c3-tiny-abc".into(),
        export_manifest_sha256: export_hash.into(),
        export_dtype: "fp16".into(),
        backend: "trtexec".into(),
        gpu: gpu.clone(),
        gpu_arch: gpu.arch(),
        tensorrt_version: trt.into(),
        cuda_version: None,
        onnxruntime_version: None,
        engines: profiles
            .into_iter()
            .map(|p| EngineEntry {
                model: p.model,
                phase: p.phase,
                file: format!("{}.plan", p.name()),
                profile: p,
            })
            .collect(),
        timing_cache: Some("timing-cache/x/trtexec.cache".into()),
        built_at_unix: 1,
        build_seconds: 2.5,
    }
}
