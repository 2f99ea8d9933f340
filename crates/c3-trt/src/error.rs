//! Errors of the TensorRT builder. Each is one line naming the file, model, input or
//! library at fault, because the user's next step is to go and look at exactly that.

use std::fmt;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong planning, building or checking TensorRT engines.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the export manifest or another contract file.
    #[error(transparent)]
    Core(#[from] c3_core::Error),
    /// Reading an ONNX model.
    #[error(transparent)]
    Onnx(#[from] c3_onnx::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A `com.microsoft` (or other non-standard) operator: TensorRT's ONNX parser has no
    /// implementation for it without a plugin.
    #[error("{model}: TensorRT cannot parse non-standard operator(s) {op}{hint}")]
    UnsupportedOp {
        model: PathBuf,
        op: String,
        hint: String,
    },
    /// A tensor element type TensorRT has no representation for.
    #[error("{model}: tensor `{tensor}` has dtype {dtype}, which TensorRT does not support")]
    UnsupportedDtype {
        model: PathBuf,
        tensor: String,
        dtype: String,
    },
    /// TensorRT 10.16+ rejects `Attention` nodes that also return the KV cache.
    #[error(
        "{model}: `Attention` node `{node}` has {outputs} outputs; TensorRT accepts only single-output Attention (export attention as MatMul/Softmax or with present KV computed outside)"
    )]
    MultiOutputAttention {
        model: PathBuf,
        node: String,
        outputs: usize,
    },
    /// The manifest and the ONNX graph disagree, or a shape cannot be profiled.
    #[error("{model}: {msg}")]
    Model { model: PathBuf, msg: String },
    /// Invalid builder options (flags).
    #[error("{0}")]
    Options(String),
    /// A missing or unreadable input (export or engine folder).
    #[error("{0}")]
    Input(String),
    /// No usable CUDA device.
    #[error("no CUDA device found: {0}")]
    NoGpu(String),
    /// The TensorRT (or CUDA runtime) shared library is missing.
    #[error("{0}")]
    NoLibrary(String),
    /// The chosen back-end (trtexec or ONNX Runtime's TensorRT EP) failed.
    #[error("{backend}: {msg}")]
    Backend { backend: &'static str, msg: String },
    /// An engine folder whose `plan.json` does not fit this export, GPU or TensorRT.
    #[error("{path}: {mismatch}")]
    Plan {
        path: PathBuf,
        mismatch: PlanMismatch,
    },
}

impl Error {
    /// Whether the machine, not the input, is at fault: no GPU, a missing TensorRT,
    /// CUDA or ONNX Runtime library.
    pub fn is_environment(&self) -> bool {
        match self {
            Error::NoGpu(_) | Error::NoLibrary(_) => true,
            Error::Onnx(e) => e.is_environment(),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn model(model: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Model {
            model: model.into(),
            msg: msg.into(),
        }
    }
}

/// One way a plan differs from what is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The plan was built from another export.
    ExportHash { plan: String, export: String },
    /// The engines were built for another GPU architecture.
    GpuArch { plan: String, present: Vec<String> },
    /// The engines were built with another TensorRT version.
    TensorRt { plan: String, present: String },
    /// Built against another CUDA major version.
    Cuda { plan: String, present: String },
    /// `plan.json` of another format version.
    Format { plan: String, expected: String },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::ExportHash { plan, export } => write!(
                f,
                "built from export manifest {}, but this export's manifest is {}",
                short(plan),
                short(export)
            ),
            Mismatch::GpuArch { plan, present } => write!(
                f,
                "built for GPU arch {plan}, but this machine has {}",
                if present.is_empty() {
                    "no CUDA device".to_owned()
                } else {
                    present.join(", ")
                }
            ),
            Mismatch::TensorRt { plan, present } if present.is_empty() => write!(
                f,
                "built with TensorRT {plan}, but no TensorRT library (libnvinfer.so.*) was found"
            ),
            Mismatch::TensorRt { plan, present } => write!(
                f,
                "built with TensorRT {plan}, but TensorRT {present} is installed"
            ),
            Mismatch::Cuda { plan, present } => {
                write!(f, "built with CUDA {plan}, but CUDA {present} is installed")
            }
            Mismatch::Format { plan, expected } => {
                write!(f, "plan format is `{plan}`, this build reads `{expected}`")
            }
        }
    }
}

/// Everything that differs between a plan and the present machine and export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMismatch(pub Vec<Mismatch>);

impl fmt::Display for PlanMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("engine plan does not match: ")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str(" (rebuild with `c3 build EXPORT --out trt-plans/`)")
    }
}

impl std::error::Error for PlanMismatch {}

/// First 12 hex characters: enough to tell hashes apart in a message.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
