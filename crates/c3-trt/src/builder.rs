//! `c3 build EXPORT --out trt-plans/`: the arguments and the build itself.
//!
//! Order matters: everything that can be checked without a GPU (manifest, ONNX ops
//! and dtypes, profiles) is checked first, so `--dry-run` on a laptop catches what
//! would otherwise fail an hour into a GPU job; then the GPU and TensorRT are probed;
//! `plan.json` is written last, so a folder with one is complete.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use c3_core::ExportManifest;
use serde::Serialize;

use crate::backend::{Backend, BackendChoice, EngineJob, JobPaths, plan_jobs};
use crate::error::{Error, Result};
use crate::gpu::{GpuInfo, Probe, select_gpu};
use crate::plan::{self, EngineEntry, PLAN_FORMAT, PlanManifest};
use crate::profiles::{EngineProfile, ProfileOptions, ProfileSet, derive_profiles};
use crate::validate::{ModelCheck, validate_export};
use c3_core::staging::{Artifact, Staging, check_out};

/// A plan folder, complete once its `plan.json` is written.
const PLAN: Artifact = Artifact {
    what: "a plan",
    marker: plan::PLAN_FILE,
};

/// Compile an export's ONNX models into TensorRT engines.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct BuildArgs {
    /// Export folder made by `c3 export` (holds c3-export.json).
    #[cfg_attr(feature = "cli", arg(value_name = "EXPORT"))]
    pub export: PathBuf,
    /// Output root; engines go to OUT/<model-id>/<gpu-arch>-trt<version>/.
    #[cfg_attr(feature = "cli", arg(long, default_value = "trt-plans"))]
    pub out: PathBuf,
    /// Device: `auto` (first), an index, an arch (`sm_90`) or part of its name. In a
    /// dry run without a GPU, an arch names the target folder.
    #[cfg_attr(feature = "cli", arg(long, default_value = "auto"))]
    pub gpu: String,
    /// Which phase's engines to build.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = ProfileSet::Both))]
    pub profile: ProfileSet,
    /// Largest batch the engines accept.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub max_batch: usize,
    /// Batch TensorRT tunes kernels for (default 1).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub opt_batch: usize,
    /// Document length the encoder is tuned for (default: the encoder limit).
    #[cfg_attr(feature = "cli", arg(long))]
    pub opt_text_len: Option<usize>,
    /// KV length decode steps are tuned for (default: prompt + half the encoder limit).
    #[cfg_attr(feature = "cli", arg(long))]
    pub opt_past_len: Option<usize>,
    /// Validate the export for TensorRT and print the profiles and build configuration;
    /// writes nothing. Works without a GPU.
    #[cfg_attr(feature = "cli", arg(long))]
    pub dry_run: bool,
    /// Replace an existing plan folder (refused otherwise). The new one is built
    /// beside it and swapped in only when complete.
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
    /// Build back-end.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = BackendChoice::Auto))]
    pub backend: BackendChoice,
    /// Print the report as JSON.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: bool,
}

impl BuildArgs {
    /// Arguments with every default, for `export`.
    pub fn new(export: impl Into<PathBuf>) -> Self {
        BuildArgs {
            export: export.into(),
            out: PathBuf::from("trt-plans"),
            gpu: "auto".into(),
            profile: ProfileSet::Both,
            max_batch: 1,
            opt_batch: 1,
            opt_text_len: None,
            opt_past_len: None,
            dry_run: false,
            force: false,
            backend: BackendChoice::Auto,
            json: false,
        }
    }

    pub fn profile_options(&self) -> ProfileOptions {
        ProfileOptions {
            max_batch: self.max_batch,
            opt_batch: self.opt_batch,
            opt_text_len: self.opt_text_len,
            opt_past_len: self.opt_past_len,
        }
    }
}

/// What a build did, or (dry run) would do.
#[derive(Clone, Debug, Serialize)]
pub struct BuildReport {
    pub dry_run: bool,
    pub export: PathBuf,
    pub export_manifest_sha256: String,
    pub model_id: String,
    pub backend: Backend,
    /// Engine precision: the export dtype (TensorRT 11 is strongly typed).
    pub precision: String,
    pub gpu: Option<GpuInfo>,
    /// `sm_90`, or `<gpu-arch>` in a dry run without a GPU.
    pub gpu_arch: String,
    /// TensorRT version, or `<version>` in a dry run without TensorRT.
    pub tensorrt_version: String,
    pub cuda_version: Option<String>,
    pub plan_dir: PathBuf,
    pub timing_cache_dir: PathBuf,
    pub models: Vec<ModelCheck>,
    pub profiles: Vec<EngineProfile>,
    pub jobs: Vec<EngineJob>,
    /// The written `plan.json` (not in a dry run).
    pub plan_file: Option<PathBuf>,
    pub notes: Vec<String>,
}

impl fmt::Display for BuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = if self.dry_run {
            "dry run (nothing written)"
        } else {
            "built"
        };
        writeln!(f, "c3 build: {head}")?;
        writeln!(
            f,
            "export     {} (manifest {})",
            self.export.display(),
            self.export_manifest_sha256
        )?;
        writeln!(f, "model id   {}", self.model_id)?;
        writeln!(f, "backend    {}", self.backend.name())?;
        writeln!(f, "precision  {}", self.precision)?;
        match &self.gpu {
            Some(g) => writeln!(
                f,
                "gpu        {}: {} ({}, driver {})",
                g.index,
                g.name,
                g.arch(),
                g.driver_version
            )?,
            None => writeln!(f, "gpu        none found; target arch {}", self.gpu_arch)?,
        }
        writeln!(
            f,
            "tensorrt   {}   cuda {}",
            self.tensorrt_version,
            self.cuda_version.as_deref().unwrap_or("unknown")
        )?;
        writeln!(f, "plan dir   {}", self.plan_dir.display())?;
        writeln!(f, "timing     {}", self.timing_cache_dir.display())?;
        for m in &self.models {
            writeln!(
                f,
                "checked    {} ({} nodes, {} op types): ok for TensorRT",
                m.file.display(),
                m.nodes,
                m.op_types
            )?;
        }
        writeln!(f, "profiles:")?;
        for p in &self.profiles {
            write!(f, "{p}")?;
        }
        writeln!(f, "build configuration:")?;
        for j in &self.jobs {
            writeln!(f, "{} -> {}", j.name, j.output)?;
            if let Some(cmd) = &j.command {
                writeln!(f, "  {}", cmd.join(" "))?;
            }
            for (k, v) in j.ort_options.iter().flatten() {
                writeln!(f, "  {k}={v}")?;
            }
        }
        if let Some(p) = &self.plan_file {
            writeln!(f, "plan       {}", p.display())?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// Runs `c3 build` with the machine's own PATH and library directories.
pub fn build(args: &BuildArgs) -> Result<BuildReport> {
    build_with(args, &Probe::from_env())
}

/// [`build`] with an explicit probe (tests use fake `nvidia-smi`/`trtexec` and
/// library folders).
pub fn build_with(args: &BuildArgs, probe: &Probe) -> Result<BuildReport> {
    build_reporting(args, probe, &mut |_| {})
}

/// A point in a real build, for progress: engines take minutes each on a GPU.
#[derive(Debug, Clone, Copy)]
pub enum BuildEvent<'a> {
    /// Engine `index` of `total` starts building.
    EngineStarted {
        index: usize,
        total: usize,
        job: &'a EngineJob,
    },
    /// It finished after `seconds`.
    EngineBuilt {
        index: usize,
        total: usize,
        job: &'a EngineJob,
        seconds: f64,
    },
}

/// [`build_with`], reporting each engine as it starts and finishes.
pub fn build_reporting(
    args: &BuildArgs,
    probe: &Probe,
    on_event: &mut dyn FnMut(BuildEvent),
) -> Result<BuildReport> {
    let started = Instant::now();
    let (m, hash) = ExportManifest::load(&args.export)?;
    let models = validate_export(&args.export, &m)?;
    let profiles = derive_profiles(&m, args.profile, &args.profile_options())?;
    let backend = Backend::resolve(args.backend);
    let model_id = plan::model_id(&m, &hash);
    let mut notes = Vec::new();

    // The target: real in a build, best effort (or placeholders) in a dry run.
    let (gpu, arch, trt, cuda) = if args.dry_run {
        let gpu = probe
            .gpus()
            .ok()
            .and_then(|g| select_gpu(&g, &args.gpu).ok());
        let arch = match (&gpu, args.gpu.starts_with("sm_")) {
            (Some(g), _) => g.arch(),
            (None, true) => args.gpu.clone(),
            (None, false) => {
                notes.push("no CUDA device here: the target arch is a placeholder (pass --gpu sm_90 to name it)".into());
                "<gpu-arch>".to_owned()
            }
        };
        let trt = probe.tensorrt().ok();
        if trt.is_none() {
            notes.push("TensorRT not found here: its version is a placeholder; trtexec flags assume TensorRT 11".into());
        }
        (gpu, arch, trt, probe.cudart())
    } else {
        let gpus = probe.gpus()?;
        let gpu = select_gpu(&gpus, &args.gpu)?;
        let trt = probe.tensorrt()?;
        let arch = gpu.arch();
        (Some(gpu), arch, Some(trt), probe.cudart())
    };
    let trt_version = trt
        .as_ref()
        .map_or("<version>".to_owned(), |t| t.version.clone());
    let plan_dir = plan::plan_dir(&args.out, &model_id, &arch, &trt_version);
    let timing_dir = plan::timing_cache_dir(&args.out, &arch, &trt_version);

    let trtexec = probe.which("trtexec");
    match backend {
        Backend::Trtexec if trtexec.is_none() => {
            let msg = "trtexec not on PATH (it ships with the TensorRT tar/deb packages, not the pip wheel); use --backend ort-trt with a c3 built with the `gpu` feature";
            if !args.dry_run {
                return Err(Error::NoLibrary(msg.into()));
            }
            notes.push(msg.into());
        }
        Backend::OrtTrt if !cfg!(feature = "gpu") => {
            let msg = "this c3 was built without the `gpu` feature, so the ONNX Runtime TensorRT back-end is not compiled in; rebuild with `--features gpu` or use --backend trtexec";
            if !args.dry_run {
                return Err(Error::Options(msg.into()));
            }
            notes.push(msg.into());
        }
        _ => {}
    }
    let trtexec_path = trtexec.unwrap_or_else(|| PathBuf::from("trtexec"));
    let jobs = plan_jobs(
        backend,
        &profiles,
        &JobPaths {
            export_dir: &args.export,
            plan_dir: &plan_dir,
            timing_dir: &timing_dir,
            trtexec: &trtexec_path,
            device: gpu.as_ref().map_or(0, |g| g.index),
            trt_major: trt.as_ref().and_then(|t| t.major()).or(Some(11)),
        },
    );

    let mut report = BuildReport {
        dry_run: args.dry_run,
        export: args.export.clone(),
        export_manifest_sha256: hash.clone(),
        model_id: model_id.clone(),
        backend,
        precision: format!(
            "{} (from the exported graph; TensorRT 11 is strongly typed, no builder precision flags)",
            m.dtype
        ),
        gpu: gpu.clone(),
        gpu_arch: arch.clone(),
        tensorrt_version: trt_version.clone(),
        cuda_version: cuda.as_ref().map(|c| c.version.clone()),
        plan_dir: plan_dir.clone(),
        timing_cache_dir: timing_dir.clone(),
        models,
        profiles: profiles.clone(),
        jobs,
        plan_file: None,
        notes,
    };
    if args.dry_run {
        return Ok(report);
    }

    // Engines record the export hash: make sure the files are the ones it describes.
    m.verify_files(&args.export, c3_core::FileCheck::Full)?;
    // The plan folder is built beside its destination and swapped in complete, so a
    // failed or killed build never leaves a folder the runtime would load.
    check_out(&plan_dir, PLAN, args.force)?;
    std::fs::create_dir_all(&timing_dir).map_err(|e| Error::io(&timing_dir, e))?;
    let staging = Staging::create(&plan_dir)?;
    // The same jobs, writing into the staging folder (the report shows the final paths).
    let staged_jobs = plan_jobs(
        backend,
        &profiles,
        &JobPaths {
            export_dir: &args.export,
            plan_dir: staging.path(),
            timing_dir: &timing_dir,
            trtexec: &trtexec_path,
            device: gpu.as_ref().map_or(0, |g| g.index),
            trt_major: trt.as_ref().and_then(|t| t.major()).or(Some(11)),
        },
    );
    let total = staged_jobs.len();
    for (index, job) in staged_jobs.iter().enumerate() {
        on_event(BuildEvent::EngineStarted { index, total, job });
        let t = Instant::now();
        run_job(backend, job, staging.path())?;
        let seconds = t.elapsed().as_secs_f64();
        on_event(BuildEvent::EngineBuilt {
            index,
            total,
            job,
            seconds,
        });
    }
    let gpu = gpu.ok_or_else(|| Error::NoGpu("device vanished during the build".into()))?;
    let built_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let timing_rel = timing_dir
        .strip_prefix(&args.out)
        .unwrap_or(&timing_dir)
        .display()
        .to_string();
    let plan = PlanManifest {
        format: PLAN_FORMAT.into(),
        c3_version: env!("CARGO_PKG_VERSION").into(),
        model_id,
        export_manifest_sha256: hash,
        export_dtype: m.dtype.name().into(),
        backend: backend.name().into(),
        gpu,
        gpu_arch: arch,
        tensorrt_version: trt_version,
        cuda_version: report.cuda_version.clone(),
        onnxruntime_version: None,
        engines: report
            .jobs
            .iter()
            .zip(&profiles)
            .map(|(j, p)| EngineEntry {
                model: j.model,
                phase: j.phase,
                file: j.output.clone(),
                profile: p.clone(),
            })
            .collect(),
        timing_cache: Some(timing_rel),
        built_at_unix,
        build_seconds: started.elapsed().as_secs_f64(),
    };
    plan.save(staging.path())?;
    staging.publish(&plan_dir, PLAN, args.force)?;
    report.plan_file = Some(plan_dir.join(plan::PLAN_FILE));
    Ok(report)
}

fn run_job(backend: Backend, job: &EngineJob, plan_dir: &Path) -> Result<()> {
    match backend {
        Backend::Trtexec => crate::backend::run_trtexec(job, plan_dir),
        #[cfg(feature = "gpu")]
        Backend::OrtTrt => crate::ort_trt::build_engine(job, plan_dir),
        #[cfg(not(feature = "gpu"))]
        Backend::OrtTrt => Err(Error::Options(
            "the ONNX Runtime TensorRT back-end needs the `gpu` feature".into(),
        )),
    }
}

#[cfg(test)]
mod tests;
