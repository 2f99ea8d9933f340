//! The engine folder layout and its manifest `plan.json`.
//!
//! ```text
//! trt-plans/
//!   timing-cache/<gpu-arch>-trt<version>/   shared by every model built on that GPU
//!   <model-id>/<gpu-arch>-trt<version>/
//!     plan.json                             written last: its presence means complete
//!     <model>-<phase>.plan | engines/ + <model>-<phase>_ctx.onnx
//! ```
//!
//! Engines only run on the GPU architecture and TensorRT version they were built
//! with, and only make sense with the export they were built from, so all three are in
//! the path or the manifest, and [`check_plan`] refuses any difference by name.

use std::path::{Path, PathBuf};

use c3_core::ExportManifest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Mismatch, PlanMismatch, Result};
use crate::gpu::GpuInfo;
use crate::profiles::{EngineProfile, ModelKind, Phase};

/// Manifest file name inside an engine folder.
pub const PLAN_FILE: &str = "plan.json";
/// The `format` value this code writes and reads.
pub const PLAN_FORMAT: &str = "c3-trt-plan/1";
/// Folder under `--out` holding the timing caches.
pub const TIMING_CACHE_DIR: &str = "timing-cache";

/// `plan.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanManifest {
    pub format: String,
    /// Version of c3 that built the engines.
    pub c3_version: String,
    pub model_id: String,
    /// sha256 of the export's `c3-export.json`.
    pub export_manifest_sha256: String,
    /// Export dtype: TensorRT 11 is strongly typed, so this is the engines' precision.
    pub export_dtype: String,
    /// `ort-trt` or `trtexec`.
    pub backend: String,
    pub gpu: GpuInfo,
    pub gpu_arch: String,
    pub tensorrt_version: String,
    pub cuda_version: Option<String>,
    /// ONNX Runtime version, for the `ort-trt` back-end.
    pub onnxruntime_version: Option<String>,
    pub engines: Vec<EngineEntry>,
    /// Timing cache used, relative to `--out`.
    pub timing_cache: Option<String>,
    /// Seconds since the Unix epoch when the build finished.
    pub built_at_unix: u64,
    pub build_seconds: f64,
}

/// One built engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineEntry {
    pub model: ModelKind,
    pub phase: Phase,
    /// What the runtime loads, relative to the plan folder: the serialized engine
    /// (trtexec) or the EP-context model wrapping it (ONNX Runtime).
    pub file: String,
    /// The optimization profile the engine was built with.
    pub profile: EngineProfile,
}

impl PlanManifest {
    /// Reads `DIR/plan.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(PLAN_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::Input(format!(
                "{}: cannot read the engine plan ({e}); is {} a folder made by `c3 build`?",
                path.display(),
                dir.display()
            ))
        })?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json { path, source })
    }

    /// Writes `DIR/plan.json` atomically (temp file + rename), so a crash mid-build
    /// never leaves a folder that looks complete.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(PLAN_FILE);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        let tmp = dir.join(format!(".{PLAN_FILE}.partial-{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// The engine of `model` at `phase`.
    pub fn engine(&self, model: ModelKind, phase: Phase) -> Option<&EngineEntry> {
        self.engines
            .iter()
            .find(|e| e.model == model && e.phase == phase)
    }
}

/// `<name>-<first 12 hex of the manifest hash>`, the name taken from the checkpoint
/// folder so people can tell plans apart, the hash so two exports never collide.
pub fn model_id(m: &ExportManifest, manifest_sha256: &str) -> String {
    let base = Path::new(&m.source.checkpoint)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    name = name.trim_matches(|c| c == '-' || c == '.').to_owned();
    if name.is_empty() {
        name = "c3".to_owned();
    }
    let short = manifest_sha256.get(..12).unwrap_or(manifest_sha256);
    format!("{name}-{short}")
}

/// `sm_90-trt11.4.0`.
pub fn target_dir_name(gpu_arch: &str, trt_version: &str) -> String {
    format!("{gpu_arch}-trt{trt_version}")
}

/// `<out>/<model-id>/<gpu-arch>-trt<version>`.
pub fn plan_dir(out: &Path, model_id: &str, gpu_arch: &str, trt_version: &str) -> PathBuf {
    out.join(model_id)
        .join(target_dir_name(gpu_arch, trt_version))
}

/// `<out>/timing-cache/<gpu-arch>-trt<version>`: timing caches depend on the device
/// and TensorRT, not on the model, so every model built for this GPU reuses it.
pub fn timing_cache_dir(out: &Path, gpu_arch: &str, trt_version: &str) -> PathBuf {
    out.join(TIMING_CACHE_DIR)
        .join(target_dir_name(gpu_arch, trt_version))
}

/// Checks a plan against the export and the device it is about to run on. Every
/// difference is reported, each naming both values.
pub fn check_plan(
    plan: &PlanManifest,
    export_manifest_sha256: &str,
    gpu: &GpuInfo,
    trt_version: &str,
) -> Result<(), PlanMismatch> {
    check_plan_on(
        plan,
        export_manifest_sha256,
        std::slice::from_ref(gpu),
        trt_version,
        None,
    )
}

/// [`check_plan`] against every device present (the plan fits if one has its arch)
/// and, when known on both sides, the CUDA major version.
pub fn check_plan_on(
    plan: &PlanManifest,
    export_manifest_sha256: &str,
    gpus: &[GpuInfo],
    trt_version: &str,
    cuda_version: Option<&str>,
) -> Result<(), PlanMismatch> {
    let mut diffs = Vec::new();
    if plan.format != PLAN_FORMAT {
        diffs.push(Mismatch::Format {
            plan: plan.format.clone(),
            expected: PLAN_FORMAT.to_owned(),
        });
    }
    if plan.export_manifest_sha256 != export_manifest_sha256 {
        diffs.push(Mismatch::ExportHash {
            plan: plan.export_manifest_sha256.clone(),
            export: export_manifest_sha256.to_owned(),
        });
    }
    if !gpus.iter().any(|g| g.arch() == plan.gpu_arch) {
        diffs.push(Mismatch::GpuArch {
            plan: plan.gpu_arch.clone(),
            present: gpus
                .iter()
                .map(|g| format!("{} ({})", g.arch(), g.name))
                .collect(),
        });
    }
    // Engines are not portable across TensorRT versions (unless built
    // version-compatible, which we do not): compare exactly.
    if plan.tensorrt_version != trt_version {
        diffs.push(Mismatch::TensorRt {
            plan: plan.tensorrt_version.clone(),
            present: trt_version.to_owned(),
        });
    }
    let major = |v: &str| v.split('.').next().map(str::to_owned);
    if let (Some(p), Some(c)) = (plan.cuda_version.as_deref(), cuda_version)
        && major(p) != major(c)
    {
        diffs.push(Mismatch::Cuda {
            plan: p.to_owned(),
            present: c.to_owned(),
        });
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(PlanMismatch(diffs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{manifest, plan_for};

    fn h100() -> GpuInfo {
        GpuInfo {
            index: 0,
            name: "NVIDIA H100".into(),
            compute_capability: "9.0".into(),
            driver_version: "570.86.15".into(),
        }
    }

    #[test]
    fn layout_follows_model_gpu_and_trt() {
        let mut m = manifest("fp16", "tensorrt");
        m.source.checkpoint = "/data/ckpt/C3 Qwen 3B/".into();
        let hash = "0123456789abcdef".repeat(4);
        let id = model_id(&m, &hash);
        assert_eq!(id, "c3-qwen-3b-0123456789ab");
        let dir = plan_dir(Path::new("trt-plans"), &id, "sm_90", "11.4.0");
        assert_eq!(
            dir,
            Path::new("trt-plans/c3-qwen-3b-0123456789ab/sm_90-trt11.4.0")
        );
        assert_eq!(
            timing_cache_dir(Path::new("trt-plans"), "sm_90", "11.4.0"),
            Path::new("trt-plans/timing-cache/sm_90-trt11.4.0")
        );
        m.source.checkpoint = "///".into();
        assert!(model_id(&m, "ab").starts_with("c3-ab"));
    }

    #[test]
    fn plan_round_trips_atomically() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let plan = plan_for("abc", &h100(), "11.4.0");
        plan.save(dir.path())?;
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        assert_eq!(names, vec![std::ffi::OsString::from(PLAN_FILE)]);
        let back = PlanManifest::load(dir.path())?;
        assert_eq!(back, plan);
        assert!(back.engine(ModelKind::Decoder, Phase::Decode).is_some());
        Ok(())
    }

    #[test]
    fn matching_plan_passes() {
        let plan = plan_for("abc", &h100(), "11.4.0");
        assert_eq!(check_plan(&plan, "abc", &h100(), "11.4.0"), Ok(()));
    }

    #[test]
    fn wrong_gpu_arch_is_refused() {
        let plan = plan_for("abc", &h100(), "11.4.0");
        let ada = GpuInfo {
            name: "NVIDIA L40S".into(),
            compute_capability: "8.9".into(),
            ..h100()
        };
        let err = check_plan(&plan, "abc", &ada, "11.4.0").unwrap_err();
        assert!(
            matches!(err.0.as_slice(), [Mismatch::GpuArch { .. }]),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("built for GPU arch sm_90") && msg.contains("sm_89 (NVIDIA L40S)"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_trt_version_is_refused() {
        let plan = plan_for("abc", &h100(), "11.4.0");
        let err = check_plan(&plan, "abc", &h100(), "10.16.0").unwrap_err();
        assert!(
            matches!(err.0.as_slice(), [Mismatch::TensorRt { .. }]),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("TensorRT 11.4.0, but TensorRT 10.16.0"),
            "{err}"
        );
    }

    #[test]
    fn wrong_export_hash_is_refused() {
        let plan = plan_for(&"a".repeat(64), &h100(), "11.4.0");
        let err = check_plan(&plan, &"b".repeat(64), &h100(), "11.4.0").unwrap_err();
        assert!(
            matches!(err.0.as_slice(), [Mismatch::ExportHash { .. }]),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("aaaaaaaaaaaa")
                && msg.contains("bbbbbbbbbbbb")
                && msg.contains("c3 build"),
            "{msg}"
        );
    }

    #[test]
    fn every_difference_is_listed_once() {
        let mut plan = plan_for("abc", &h100(), "11.4.0");
        plan.cuda_version = Some("12.8".into());
        let err = check_plan_on(&plan, "xyz", &[], "10.0.0", Some("13.0.96")).unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
        assert!(err.to_string().contains("no CUDA device"), "{err}");
    }
}
