//! What the runtime calls for `--engine trt-plans/<model-id>/<arch>-trt<version>`:
//! read `plan.json`, refuse it unless it was built from this export, for a GPU
//! present here and with the TensorRT installed here, and hand back the files and
//! provider options to load each engine with.

use std::path::{Path, PathBuf};

use crate::backend::ort_trt_options;
use crate::error::{Error, Result};
use crate::gpu::{GpuInfo, Probe};
use crate::plan::{EngineEntry, PlanManifest, check_plan_on};
use crate::profiles::{ModelKind, Phase};

/// A checked engine folder.
#[derive(Clone, Debug)]
pub struct EngineSpec {
    pub dir: PathBuf,
    pub plan: PlanManifest,
    /// The device whose arch the engines were built for.
    pub gpu: GpuInfo,
}

impl EngineSpec {
    /// The plan's entry for `model` at `phase`, or an error naming what is missing.
    fn entry(&self, model: ModelKind, phase: Phase) -> Result<&EngineEntry> {
        self.plan.engine(model, phase).ok_or_else(|| {
            Error::Input(format!(
                "{}: no {} engine for the {} phase (built with --profile {}?); rebuild with --profile both",
                self.dir.join(crate::plan::PLAN_FILE).display(),
                model.name(),
                phase.name(),
                if phase == Phase::Prefill { "decode" } else { "prefill" }
            ))
        })
    }

    /// The file to load for `model` at `phase`: the EP-context model (`ort-trt`) or
    /// the serialized engine (`trtexec`).
    pub fn engine_path(&self, model: ModelKind, phase: Phase) -> Result<PathBuf> {
        Ok(self.dir.join(&self.entry(model, phase)?.file))
    }

    /// TensorRT EP options for loading the engine of `model` at `phase` (same cache
    /// location and profile as the build, no EP-context dump).
    pub fn ort_trt_options(&self, model: ModelKind, phase: Phase) -> Result<Vec<(String, String)>> {
        let e = self.entry(model, phase)?;
        Ok(ort_trt_options(
            &e.profile,
            &self.dir,
            None,
            self.gpu.index,
            false,
        ))
    }
}

/// Checks the engine folder `dir` against the export (its manifest hash) and this
/// machine's GPUs and TensorRT.
pub fn check_engine_dir(dir: &Path, export_manifest_sha256: &str) -> Result<EngineSpec> {
    check_engine_dir_with(dir, export_manifest_sha256, &Probe::from_env())
}

/// [`check_engine_dir`] with an explicit probe.
pub fn check_engine_dir_with(
    dir: &Path,
    export_manifest_sha256: &str,
    probe: &Probe,
) -> Result<EngineSpec> {
    let plan = PlanManifest::load(dir)?;
    let path = dir.join(crate::plan::PLAN_FILE);
    // Missing GPU or TensorRT show up as mismatches, next to any other difference.
    let gpus = probe.gpus().unwrap_or_default();
    let trt = probe.tensorrt().map(|l| l.version).unwrap_or_default();
    let cuda = probe.cudart().map(|l| l.version);
    check_plan_on(&plan, export_manifest_sha256, &gpus, &trt, cuda.as_deref()).map_err(
        |mismatch| Error::Plan {
            path: path.clone(),
            mismatch,
        },
    )?;
    let gpu = gpus
        .into_iter()
        .find(|g| g.arch() == plan.gpu_arch)
        .ok_or_else(|| Error::NoGpu(format!("{} needs {}", path.display(), plan.gpu_arch)))?;
    for e in &plan.engines {
        let f = dir.join(&e.file);
        if !f.is_file() {
            return Err(Error::Input(format!(
                "{}: engine file {} is missing (folder copied incompletely?)",
                path.display(),
                f.display()
            )));
        }
    }
    Ok(EngineSpec {
        dir: dir.to_owned(),
        plan,
        gpu,
    })
}

/// [`check_engine_dir`] as the runtime takes it (`c3_core::engine::PlanCheck`): the
/// plan's `engines/` folder (where `c3 build`, through ONNX Runtime's TensorRT EP,
/// keeps its engines) once the plan fits the export and this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrtPlanCheck;

impl c3_core::engine::PlanCheck for TrtPlanCheck {
    fn check(
        &self,
        plan: &Path,
        export_manifest_sha256: &str,
    ) -> std::result::Result<PathBuf, String> {
        check_engine_dir(plan, export_manifest_sha256).map_err(|e| e.to_string())?;
        Ok(plan.join("engines"))
    }
}

impl TrtPlanCheck {
    /// An engine plan for the runtime: `dir` with this check.
    pub fn plan(dir: impl Into<PathBuf>) -> c3_core::engine::EnginePlan {
        c3_core::engine::EnginePlan::new(dir, std::sync::Arc::new(TrtPlanCheck))
    }
}
