//! `build` end to end on CPU: the dry run, the refusals, and a full build against a
//! fake `nvidia-smi`, `trtexec` and `libnvinfer` (shell scripts and empty files), so
//! the layout and `plan.json` are checked without a GPU.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::engine::check_engine_dir_with;
use crate::profiles::{ModelKind, Phase};
use crate::testutil::{Variant, write_export};

fn no_gpu() -> Probe {
    Probe {
        path_var: Some(OsString::new()),
        lib_dirs: vec![PathBuf::from("/nonexistent/lib")],
    }
}

fn script(dir: &Path, name: &str, body: &str) -> anyhow::Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n"))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// A machine with one H100, TensorRT 11.4.0, CUDA 13 and trtexec.
fn fake_gpu_machine(root: &Path) -> anyhow::Result<Probe> {
    let bin = root.join("bin");
    let lib = root.join("lib");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&lib)?;
    script(
        &bin,
        "nvidia-smi",
        "echo '0, NVIDIA H100 80GB HBM3, 9.0, 570.86.15'",
    )?;
    // Writes the file named by --saveEngine=, as trtexec does.
    script(
        &bin,
        "trtexec",
        "for a in \"$@\"; do case \"$a\" in --saveEngine=*) echo engine > \"${a#--saveEngine=}\";; esac; done; echo '&&&& PASSED'",
    )?;
    std::fs::write(lib.join("libnvinfer.so.11.4.0"), b"")?;
    std::fs::write(lib.join("libcudart.so.13.0.96"), b"")?;
    Ok(Probe {
        path_var: Some(bin.into_os_string()),
        lib_dirs: vec![lib],
    })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dry_run_prints_profiles_and_config_and_writes_nothing() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let export = tmp.path().join("export");
    std::fs::create_dir(&export)?;
    write_export(&export, Variant::Clean)?;
    let before = files_under(tmp.path());
    let mut args = BuildArgs::new(&export);
    args.out = tmp.path().join("trt-plans");
    args.dry_run = true;
    args.backend = BackendChoice::Trtexec;
    args.gpu = "sm_90".into();
    let report = build_with(&args, &no_gpu())?;
    assert_eq!(files_under(tmp.path()), before, "a dry run writes nothing");
    assert!(!args.out.exists());
    assert_eq!(report.profiles.len(), 5);
    assert_eq!(report.jobs.len(), 5);
    assert_eq!(report.gpu_arch, "sm_90");
    assert!(
        report
            .plan_dir
            .ends_with(format!("{}/sm_90-trt<version>", report.model_id))
    );
    let text = report.to_string();
    for want in [
        "dry run",
        "encoder-prefill",
        "decoder-decode",
        "--minShapes=input_ids:1x1,attention_mask:1x1",
        "--timingCacheFile=",
        "fp16 (from the exported graph",
        "TensorRT not found",
    ] {
        assert!(text.contains(want), "missing `{want}` in\n{text}");
    }
    let json = serde_json::to_value(&report)?;
    assert_eq!(json["backend"], "trtexec");
    assert_eq!(json["jobs"][0]["name"], "encoder-prefill");
    // The ONNX Runtime route prints its provider options instead.
    args.backend = BackendChoice::OrtTrt;
    args.profile = ProfileSet::Decode;
    let text = build_with(&args, &no_gpu())?.to_string();
    assert!(
        text.contains("trt_ep_context_file_path=") && text.contains("trt_timing_cache_path="),
        "{text}"
    );
    assert!(!text.contains("encoder-prefill"), "{text}");
    assert!(!args.out.exists());
    Ok(())
}

#[test]
fn dry_run_rejects_ort_export_with_contrib_ops() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    write_export(tmp.path(), Variant::Contrib)?;
    let mut args = BuildArgs::new(tmp.path());
    args.dry_run = true;
    let err = build_with(&args, &no_gpu()).unwrap_err().to_string();
    assert!(
        err.contains("decoder.onnx")
            && err.contains("com.microsoft:MatMulNBits")
            && err.contains("--target tensorrt"),
        "{err}"
    );
    Ok(())
}

#[test]
fn build_without_gpu_fails_clearly() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    write_export(tmp.path(), Variant::Clean)?;
    let mut args = BuildArgs::new(tmp.path());
    args.out = tmp.path().join("out");
    let err = build_with(&args, &no_gpu()).unwrap_err().to_string();
    assert!(
        err.starts_with("no CUDA device found: nvidia-smi not on PATH"),
        "{err}"
    );
    assert!(!args.out.exists());
    // This machine as it is (CPU-only CI): the same refusal.
    let real = Probe::from_env();
    if real.which("nvidia-smi").is_none() {
        let err = build(&args).unwrap_err().to_string();
        assert!(err.contains("no CUDA device found"), "{err}");
    }
    Ok(())
}

#[test]
fn build_without_tensorrt_fails_clearly() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let export = tmp.path().join("export");
    std::fs::create_dir(&export)?;
    write_export(&export, Variant::Clean)?;
    let mut probe = fake_gpu_machine(tmp.path())?;
    probe.lib_dirs = vec![tmp.path().join("empty")];
    let mut args = BuildArgs::new(&export);
    args.out = tmp.path().join("out");
    let err = build_with(&args, &probe).unwrap_err().to_string();
    assert!(
        err.contains("libnvinfer.so") && err.contains("install TensorRT"),
        "{err}"
    );
    assert!(!args.out.exists());
    Ok(())
}

#[test]
fn fake_trtexec_build_writes_layout_and_plan() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let export = tmp.path().join("export");
    std::fs::create_dir(&export)?;
    write_export(&export, Variant::Clean)?;
    let probe = fake_gpu_machine(tmp.path())?;
    let mut args = BuildArgs::new(&export);
    args.out = tmp.path().join("trt-plans");
    args.backend = BackendChoice::Trtexec;
    args.max_batch = 4;
    // Every engine is reported started, then built, in order.
    let mut events = Vec::new();
    let report = super::build_reporting(&args, &probe, &mut |e| {
        events.push(match e {
            super::BuildEvent::EngineStarted { index, total, .. } => (index, total, false),
            super::BuildEvent::EngineBuilt { index, total, .. } => (index, total, true),
        })
    })?;
    let n = report.jobs.len();
    assert!(n > 0);
    let want: Vec<_> = (0..n).flat_map(|i| [(i, n, false), (i, n, true)]).collect();
    assert_eq!(events, want);
    let (_, hash) = c3_core::ExportManifest::load(&export)?;
    let dir = args
        .out
        .join(format!("c3-tiny-{}", &hash[..12]))
        .join("sm_90-trt11.4.0");
    assert_eq!(report.plan_file, Some(dir.join("plan.json")));
    assert!(args.out.join("timing-cache/sm_90-trt11.4.0").is_dir());
    assert!(dir.join("decoder-decode.plan").is_file());
    assert!(dir.join("decoder-decode.trtexec.log").is_file());

    let plan = PlanManifest::load(&dir)?;
    assert_eq!(plan.export_manifest_sha256, hash);
    assert_eq!(plan.gpu.name, "NVIDIA H100 80GB HBM3");
    assert_eq!(
        (plan.gpu_arch.as_str(), plan.tensorrt_version.as_str()),
        ("sm_90", "11.4.0")
    );
    assert_eq!(plan.cuda_version.as_deref(), Some("13.0.96"));
    assert_eq!(plan.engines.len(), 5);
    assert_eq!(
        plan.timing_cache.as_deref(),
        Some("timing-cache/sm_90-trt11.4.0")
    );

    // The runtime's check: this export on this machine passes...
    let spec = check_engine_dir_with(&dir, &hash, &probe)?;
    assert_eq!(
        spec.engine_path(ModelKind::Decoder, Phase::Decode)?,
        dir.join("decoder-decode.plan")
    );
    // ...another export does not, nor another TensorRT, nor a CPU-only machine.
    let err = check_engine_dir_with(&dir, &"f".repeat(64), &probe)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plan.json") && err.contains("export manifest"),
        "{err}"
    );
    let mut trt10 = probe.clone();
    let lib10 = tmp.path().join("lib10");
    std::fs::create_dir(&lib10)?;
    std::fs::write(lib10.join("libnvinfer.so.10.16.0"), b"")?;
    trt10.lib_dirs = vec![lib10];
    let err = check_engine_dir_with(&dir, &hash, &trt10)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TensorRT 11.4.0, but TensorRT 10.16.0"),
        "{err}"
    );
    let err = check_engine_dir_with(&dir, &hash, &no_gpu())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no CUDA device") && err.contains("no TensorRT library"),
        "{err}"
    );

    // A second build is refused without --force, and leaves the plan as it was.
    let plan_before = std::fs::read(dir.join("plan.json"))?;
    let err = build_with(&args, &probe).unwrap_err().to_string();
    assert!(
        err.contains("already holds a plan") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("plan.json"))?, plan_before);
    // With --force it reuses the timing cache folder and swaps the new plan in whole.
    args.force = true;
    let again = build_with(&args, &probe)?;
    assert_eq!(again.timing_cache_dir, report.timing_cache_dir);
    assert!(
        files_under(&args.out)
            .iter()
            .all(|p| !p.to_string_lossy().contains("c3-partial")
                && !p.to_string_lossy().contains("c3-old")),
        "{:?}",
        files_under(&args.out)
    );
    Ok(())
}

#[test]
fn a_failed_build_leaves_no_plan_folder() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let export = tmp.path().join("export");
    std::fs::create_dir(&export)?;
    write_export(&export, Variant::Clean)?;
    let probe = fake_gpu_machine(tmp.path())?;
    // trtexec writes one engine, then fails on the next.
    let bin = tmp.path().join("bin");
    script(
        &bin,
        "trtexec",
        "f=$(dirname \"$0\")/ran; if [ -e \"$f\" ]; then echo '&&&& FAILED'; exit 1; fi; touch \"$f\"; for a in \"$@\"; do case \"$a\" in --saveEngine=*) echo engine > \"${a#--saveEngine=}\";; esac; done; echo '&&&& PASSED'",
    )?;
    let mut args = BuildArgs::new(&export);
    args.out = tmp.path().join("trt-plans");
    args.backend = BackendChoice::Trtexec;
    assert!(build_with(&args, &probe).is_err());
    let left: Vec<_> = files_under(&args.out)
        .into_iter()
        .filter(|p| !p.starts_with(args.out.join("timing-cache")))
        .collect();
    assert!(left.is_empty(), "a failed build left {left:?}");
    Ok(())
}

#[test]
fn engine_dir_without_plan_is_named() {
    let err = check_engine_dir_with(Path::new("/nonexistent/plans"), "x", &no_gpu())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/plans/plan.json") && err.contains("c3 build"),
        "{err}"
    );
}
