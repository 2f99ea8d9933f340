//! The two build back-ends and the exact configuration each gets.
//!
//! - `ort-trt`: ONNX Runtime's TensorRT execution provider through `ort`. Creating a
//!   session with explicit profile shapes builds the engine; the EP writes it to its
//!   engine cache, reuses the timing cache, and dumps an EP-context model
//!   (`<engine>_ctx.onnx`) that a deployment loads to get the prebuilt engine without
//!   rebuilding. Compiled with the `gpu` feature.
//! - `trtexec`: NVIDIA's command-line builder, where installed; writes a serialized
//!   engine (`<engine>.plan`).
//!
//! No precision flags in either: TensorRT 11 is strongly typed, so the engines take
//! their precision from the exported graph's tensor types.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::profiles::{Bound, EngineProfile, ModelKind, Phase};

/// `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    /// `ort-trt` when built with the `gpu` feature, else `trtexec`.
    #[default]
    Auto,
    OrtTrt,
    Trtexec,
}

/// The back-end actually used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    OrtTrt,
    Trtexec,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::OrtTrt => "ort-trt",
            Backend::Trtexec => "trtexec",
        }
    }

    /// Resolves `--backend auto`.
    pub fn resolve(choice: BackendChoice) -> Backend {
        match choice {
            BackendChoice::OrtTrt => Backend::OrtTrt,
            BackendChoice::Trtexec => Backend::Trtexec,
            BackendChoice::Auto if cfg!(feature = "gpu") => Backend::OrtTrt,
            BackendChoice::Auto => Backend::Trtexec,
        }
    }
}

/// Timing cache file name used with trtexec (ONNX Runtime names its own inside the
/// timing cache folder).
pub const TRTEXEC_TIMING_CACHE: &str = "trtexec.timing";

/// One engine to build, fully configured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineJob {
    /// `decoder-decode`.
    pub name: String,
    pub model: ModelKind,
    pub phase: Phase,
    /// Source ONNX file.
    pub onnx: PathBuf,
    /// What the runtime will load, relative to the plan folder.
    pub output: String,
    /// trtexec: the full command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// ort-trt: the TensorRT EP provider options, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ort_options: Option<Vec<(String, String)>>,
}

/// Where the jobs read and write.
pub struct JobPaths<'a> {
    pub export_dir: &'a Path,
    pub plan_dir: &'a Path,
    pub timing_dir: &'a Path,
    /// The trtexec executable (`trtexec` if not found, for the dry run's display).
    pub trtexec: &'a Path,
    pub device: u32,
    /// TensorRT major version, if known: trtexec of TensorRT 10 needs
    /// `--stronglyTyped`, 11 has no other mode.
    pub trt_major: Option<u32>,
}

/// The jobs of `profiles` for `backend`.
pub fn plan_jobs(backend: Backend, profiles: &[EngineProfile], p: &JobPaths) -> Vec<EngineJob> {
    profiles
        .iter()
        .map(|prof| {
            let name = prof.name();
            let onnx = p.export_dir.join(&prof.onnx);
            match backend {
                Backend::Trtexec => EngineJob {
                    output: format!("{name}.plan"),
                    command: Some(trtexec_command(prof, &onnx, p)),
                    ort_options: None,
                    name,
                    model: prof.model,
                    phase: prof.phase,
                    onnx,
                },
                Backend::OrtTrt => EngineJob {
                    output: format!("{name}_ctx.onnx"),
                    command: None,
                    ort_options: Some(ort_trt_options(
                        prof,
                        p.plan_dir,
                        Some(p.timing_dir),
                        p.device,
                        true,
                    )),
                    name,
                    model: prof.model,
                    phase: prof.phase,
                    onnx,
                },
            }
        })
        .collect()
}

fn trtexec_command(prof: &EngineProfile, onnx: &Path, p: &JobPaths) -> Vec<String> {
    let mut cmd = vec![
        p.trtexec.display().to_string(),
        format!("--onnx={}", onnx.display()),
        format!(
            "--saveEngine={}",
            p.plan_dir.join(format!("{}.plan", prof.name())).display()
        ),
        format!(
            "--timingCacheFile={}",
            p.timing_dir.join(TRTEXEC_TIMING_CACHE).display()
        ),
        format!("--device={}", p.device),
    ];
    if !prof.inputs.is_empty() {
        cmd.extend(prof.trtexec_flags());
    }
    if p.trt_major == Some(10) {
        cmd.push("--stronglyTyped".into());
    }
    // Build only: timing inference here would just delay the next engine.
    cmd.push("--skipInference".into());
    cmd
}

/// TensorRT EP options for the engine of `prof` in `plan_dir`. `build` adds the
/// EP-context dump; the runtime leaves it out and loads the dumped model instead.
pub fn ort_trt_options(
    prof: &EngineProfile,
    plan_dir: &Path,
    timing_dir: Option<&Path>,
    device: u32,
    build: bool,
) -> Vec<(String, String)> {
    let mut o: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| o.push((k.to_owned(), v));
    set("device_id", device.to_string());
    set("trt_engine_cache_enable", "1".into());
    set(
        "trt_engine_cache_path",
        plan_dir.join("engines").display().to_string(),
    );
    set("trt_engine_cache_prefix", prof.name());
    if let Some(t) = timing_dir {
        set("trt_timing_cache_enable", "1".into());
        set("trt_timing_cache_path", t.display().to_string());
    }
    if !prof.inputs.is_empty() {
        set("trt_profile_min_shapes", prof.shapes(Bound::Min));
        set("trt_profile_opt_shapes", prof.shapes(Bound::Opt));
        set("trt_profile_max_shapes", prof.shapes(Bound::Max));
    }
    if build {
        set("trt_dump_ep_context_model", "1".into());
        set(
            "trt_ep_context_file_path",
            plan_dir
                .join(format!("{}_ctx.onnx", prof.name()))
                .display()
                .to_string(),
        );
        // 0: the engine stays a separate file beside the context model, so models
        // whose engines exceed protobuf's 2 GB limit still work.
        set("trt_ep_context_embed_mode", "0".into());
    }
    o
}

/// Runs a trtexec job, keeping its log beside the engine.
pub fn run_trtexec(job: &EngineJob, plan_dir: &Path) -> Result<()> {
    let Some(cmd) = &job.command else {
        return Err(Error::Backend {
            backend: "trtexec",
            msg: format!("{}: no command configured", job.name),
        });
    };
    let log = plan_dir.join(format!("{}.trtexec.log", job.name));
    tracing::info!(engine = %job.name, "trtexec: building");
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| Error::Backend {
            backend: "trtexec",
            msg: format!("{} failed to start: {e}", cmd[0]),
        })?;
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    std::fs::write(&log, &text).map_err(|e| Error::io(&log, e))?;
    if !out.status.success() {
        let tail = String::from_utf8_lossy(&text)
            .lines()
            .rev()
            .find(|l| l.contains("Error") || l.contains("FAILED"))
            .unwrap_or("")
            .trim()
            .to_owned();
        return Err(Error::Backend {
            backend: "trtexec",
            msg: format!(
                "building {} from {} exited with {} ({tail}); full log in {}",
                job.name,
                job.onnx.display(),
                out.status,
                log.display()
            ),
        });
    }
    let engine = plan_dir.join(&job.output);
    if !engine.is_file() {
        return Err(Error::Backend {
            backend: "trtexec",
            msg: format!(
                "{} reported success but wrote no {}",
                job.name,
                engine.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{ProfileOptions, derive_one};
    use crate::testutil::manifest;

    fn paths<'a>(plan: &'a Path, timing: &'a Path, trt_major: Option<u32>) -> JobPaths<'a> {
        JobPaths {
            export_dir: Path::new("exp"),
            plan_dir: plan,
            timing_dir: timing,
            trtexec: Path::new("/opt/trt/bin/trtexec"),
            device: 0,
            trt_major,
        }
    }

    #[test]
    fn trtexec_command_line_is_complete() -> Result<()> {
        let m = manifest("fp16", "tensorrt");
        let p = derive_one(
            &m,
            ModelKind::Encoder,
            Phase::Prefill,
            &ProfileOptions::default(),
        )?;
        let jobs = plan_jobs(
            Backend::Trtexec,
            &[p],
            &paths(Path::new("out/plan"), Path::new("out/tc"), Some(11)),
        );
        let cmd = jobs[0].command.clone().expect("command");
        assert_eq!(cmd[0], "/opt/trt/bin/trtexec");
        assert!(cmd.contains(&"--onnx=exp/encoder.onnx".to_owned()));
        assert!(cmd.contains(&"--saveEngine=out/plan/encoder-prefill.plan".to_owned()));
        assert!(cmd.contains(&"--timingCacheFile=out/tc/trtexec.timing".to_owned()));
        assert!(cmd.contains(&"--maxShapes=input_ids:1x64,attention_mask:1x64".to_owned()));
        // Strongly typed: no precision flags; TensorRT 11 needs no --stronglyTyped.
        assert!(
            !cmd.iter()
                .any(|a| a.contains("fp16") || a.contains("stronglyTyped"))
        );
        assert_eq!(jobs[0].output, "encoder-prefill.plan");
        let jobs10 = plan_jobs(
            Backend::Trtexec,
            &[derive_one(
                &m,
                ModelKind::Encoder,
                Phase::Prefill,
                &ProfileOptions::default(),
            )?],
            &paths(Path::new("p"), Path::new("t"), Some(10)),
        );
        assert!(
            jobs10[0]
                .command
                .as_ref()
                .is_some_and(|c| c.contains(&"--stronglyTyped".to_owned()))
        );
        Ok(())
    }

    #[test]
    fn ort_trt_options_cache_and_dump() -> Result<()> {
        let m = manifest("fp16", "tensorrt");
        let p = derive_one(
            &m,
            ModelKind::Decoder,
            Phase::Decode,
            &ProfileOptions::default(),
        )?;
        let jobs = plan_jobs(
            Backend::OrtTrt,
            &[p],
            &paths(Path::new("pd"), Path::new("tc"), None),
        );
        let o = jobs[0].ort_options.clone().expect("options");
        let get = |k: &str| o.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("trt_engine_cache_path"), Some("pd/engines"));
        assert_eq!(get("trt_timing_cache_path"), Some("tc"));
        assert_eq!(
            get("trt_ep_context_file_path"),
            Some("pd/decoder-decode_ctx.onnx")
        );
        assert_eq!(get("trt_dump_ep_context_model"), Some("1"));
        assert!(
            get("trt_profile_max_shapes")
                .is_some_and(|s| s.contains("past_key_values.1.value:1x2x255x8"))
        );
        assert!(get("trt_fp16_enable").is_none());
        assert_eq!(jobs[0].output, "decoder-decode_ctx.onnx");
        Ok(())
    }
}
