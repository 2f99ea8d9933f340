//! The crate's error type: each variant names the node, tensor or file at fault.

use std::path::PathBuf;

/// Errors from building, writing, reading or running ONNX models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node input names a value that no graph input, initializer or earlier node defines.
    #[error(
        "node `{node}` ({op_type}): input `{input}` is not defined by any graph input, initializer or earlier node"
    )]
    UndefinedInput {
        /// Name of the node being added.
        node: String,
        /// Its operator type.
        op_type: String,
        /// The unknown value name.
        input: String,
    },
    /// A node's inputs have element types its op does not accept together (ONNX
    /// Runtime would refuse the model when loading it).
    #[error("node `{node}` ({op_type}): {detail}")]
    TypeMismatch {
        /// Name of the node being added.
        node: String,
        /// Its operator type.
        op_type: String,
        /// Which inputs, with their names and types.
        detail: String,
    },
    /// A node of an op without type rules here, added without its output types.
    #[error(
        "node `{node}` ({op_type}): no element-type rules for this op; give its output types with NodeBuilder::output_types"
    )]
    UnknownOutputTypes {
        /// Name of the node being added.
        node: String,
        /// Its operator type.
        op_type: String,
    },
    /// A graph output declared with another element type than its value has.
    #[error("graph output `{name}` is declared {declared} but its value is {actual}")]
    OutputType {
        /// The output's name.
        name: String,
        /// The type given to `GraphBuilder::output`.
        declared: crate::dtype::ElemType,
        /// The value's type.
        actual: crate::dtype::ElemType,
    },
    /// A graph output names a value nothing defines.
    #[error("graph output `{0}` is not defined by any graph input, initializer or node")]
    UndefinedOutput(String),
    /// A value (input, initializer or node output) name is used twice.
    #[error("value name `{0}` is already defined in the graph")]
    DuplicateName(String),
    /// An initializer or constant whose byte count does not match its dtype and shape.
    #[error(
        "tensor `{name}`: {got} bytes given, but dtype {dtype} with shape {shape:?} needs {expected}"
    )]
    InitializerSize {
        /// Initializer name.
        name: String,
        /// Element type name.
        dtype: &'static str,
        /// Its shape.
        shape: Vec<i64>,
        /// Bytes expected from dtype and shape.
        expected: u64,
        /// Bytes given (or written by a streamed source).
        got: u64,
    },
    /// A shape has a negative dimension.
    #[error("tensor `{name}`: invalid shape {shape:?}")]
    InvalidShape {
        /// Tensor name.
        name: String,
        /// The offending shape.
        shape: Vec<i64>,
    },
    /// A streamed initializer source failed while its bytes were being written.
    #[error("initializer `{name}`: source failed while writing {path}")]
    InitializerSource {
        /// Initializer name.
        name: String,
        /// File being written.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The inline part of a model would exceed protobuf's 2 GiB message limit.
    #[error(
        "model {path}: {bytes} bytes of inline data exceed protobuf's 2 GiB limit; lower the external-data threshold"
    )]
    TooLargeInline {
        /// Model file being written.
        path: PathBuf,
        /// Bytes that would be inline.
        bytes: u64,
    },
    /// File-system error on the named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid ONNX protobuf (truncated or corrupt).
    #[error("{path}: not a valid ONNX model (truncated or corrupt file?): {source}")]
    Decode {
        /// The model file.
        path: PathBuf,
        /// Protobuf decoding error.
        #[source]
        source: prost::DecodeError,
    },
    /// The file decodes as protobuf but lacks fields every ONNX model has.
    #[error("{path}: not a valid ONNX model (truncated or corrupt file?): {reason}")]
    InvalidModel {
        /// The model file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The ONNX Runtime shared library was found nowhere it is looked for.
    #[cfg(feature = "ort")]
    #[error(
        "ONNX Runtime library not found (tried {tried}): run scripts/install-deps.sh in \
         a checkout, put libonnxruntime.so beside the binary or in ../lib, or pass \
         --ort-lib / set ORT_DYLIB_PATH to it"
    )]
    OrtLibraryMissing {
        /// Every place tried, in order.
        tried: String,
    },
    /// ONNX Runtime failed to load or initialise.
    #[cfg(feature = "ort")]
    #[error("ONNX Runtime at {path}: {message}")]
    Ort {
        /// Library path in use.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
    /// ONNX Runtime could not create a session for a model.
    #[cfg(feature = "ort")]
    #[error("ONNX Runtime session for {path}: {message}")]
    OrtSession {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the machine, not the input, is at fault: the ONNX Runtime library is
    /// missing or does not load (pipelines map this to their "environment" exit code).
    pub fn is_environment(&self) -> bool {
        #[cfg(feature = "ort")]
        if matches!(self, Self::OrtLibraryMissing { .. } | Self::Ort { .. }) {
            return true;
        }
        false
    }

    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
