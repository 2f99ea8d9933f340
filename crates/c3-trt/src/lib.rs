//! TensorRT engines for C3 exports: `c3 build` and the runtime's `--engine` check.
//!
//! # Route
//! TensorRT is reached through maintained tools only:
//! - **ONNX Runtime's TensorRT execution provider** through `ort` (feature `gpu`), the
//!   recommended back-end: ONNX Runtime builds the engine from the exported ONNX with
//!   our min/opt/max profiles, keeps it in an engine cache, reuses a timing cache, and
//!   dumps an EP-context model so a deployment loads the prebuilt engine instead of
//!   rebuilding. The runtime already loads ONNX Runtime, so no new native dependency.
//! - **`trtexec`** where installed (TensorRT tar/deb packages): the same profiles as
//!   command-line flags, writing a serialized engine.
//! - Not `tensorrt-rs`: its last release (0.3.0, 2020) binds TensorRT 5-7 and cannot
//!   load TensorRT 10/11. A thin FFI of our own would duplicate what the EP does.
//!
//! Nothing links CUDA or TensorRT at build time: devices are found with `nvidia-smi`,
//! libraries and their versions by file name ([`gpu`]). So the whole crate builds and
//! its tests run on CPU machines; where a GPU is needed, errors say what is missing.
//!
//! # Modules
//! - [`profiles`]: optimization profiles from the export manifest.
//! - [`validate`]: the dry-run checks of the ONNX graphs for TensorRT.
//! - [`gpu`]: device and library probing.
//! - [`plan`]: the `trt-plans/` layout, `plan.json`, and [`check_plan`].
//! - [`backend`]: the exact trtexec command lines / TensorRT EP options.
//! - [`builder`]: [`BuildArgs`] and [`build`] (`c3 build`).
//! - [`engine`]: [`check_engine_dir`] for `--engine`.

pub mod backend;
pub mod builder;
pub mod engine;
pub mod error;
pub mod gpu;
#[cfg(feature = "gpu")]
pub mod ort_trt;
pub mod plan;
pub mod profiles;
pub mod validate;

#[cfg(test)]
mod testutil;

pub use backend::{Backend, BackendChoice, EngineJob};
pub use builder::{BuildArgs, BuildEvent, BuildReport, build, build_reporting, build_with};
pub use engine::{EngineSpec, TrtPlanCheck, check_engine_dir, check_engine_dir_with};
pub use error::{Error, Mismatch, PlanMismatch, Result};
pub use gpu::{GpuInfo, LibFound, Probe};
pub use plan::{PLAN_FILE, PlanManifest, check_plan};
pub use profiles::{EngineProfile, ModelKind, Phase, ProfileOptions, ProfileSet, derive_profiles};
