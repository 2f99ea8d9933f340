//! `Model`: a finished graph plus model-level metadata, convertible to a `ModelProto`.
//! Writing to disk (atomic, with external data) lives in `write.rs`.

use std::path::Path;

use crate::dtype::ElemType;
use crate::error::{Error, Result};
use crate::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    ValueInfoProto,
};
use crate::tensor::{TensorData, raw_tensor};

/// Protobuf refuses messages of 2 GiB or more; keep a margin for the graph itself.
pub(crate) const PROTO_INLINE_LIMIT: u64 = (2 << 30) - (64 << 20);

/// An initializer whose bytes may not exist yet (streamed at write time).
#[derive(Debug)]
pub(crate) struct Initializer {
    pub(crate) name: String,
    pub(crate) dtype: ElemType,
    pub(crate) shape: Vec<i64>,
    /// `numel * dtype.size()`, what the payload must produce.
    pub(crate) byte_len: u64,
    pub(crate) data: TensorData,
}

impl Initializer {
    /// Materialises the payload in memory as an inline tensor; `path` names the file
    /// being written, for errors.
    pub(crate) fn to_inline(&self, path: &Path) -> Result<TensorProto> {
        let mut buf = Vec::with_capacity(usize::try_from(self.byte_len).unwrap_or(0));
        self.data
            .write_to(&mut buf)
            .map_err(|source| Error::InitializerSource {
                name: self.name.clone(),
                path: path.to_owned(),
                source,
            })?;
        self.check_len(buf.len() as u64)?;
        Ok(raw_tensor(&self.name, self.dtype, &self.shape, buf))
    }

    /// Fails unless a source produced exactly the expected number of bytes.
    pub(crate) fn check_len(&self, got: u64) -> Result<()> {
        if got == self.byte_len {
            return Ok(());
        }
        Err(Error::InitializerSize {
            name: self.name.clone(),
            dtype: self.dtype.name(),
            shape: self.shape.clone(),
            expected: self.byte_len,
            got,
        })
    }
}

/// A finished ONNX model, made by [`crate::GraphBuilder::finish`]. Initializer payloads
/// stay where they are (memory or a streamed source) until the model is written.
#[derive(Debug)]
pub struct Model {
    pub(crate) graph_name: String,
    pub(crate) inputs: Vec<ValueInfoProto>,
    pub(crate) outputs: Vec<ValueInfoProto>,
    pub(crate) nodes: Vec<NodeProto>,
    pub(crate) initializers: Vec<Initializer>,
    pub(crate) opsets: Vec<(String, i64)>,
    pub(crate) ir_version: i64,
    pub(crate) producer_name: String,
    pub(crate) producer_version: String,
    pub(crate) metadata: Vec<(String, String)>,
}

impl Model {
    /// Sets `producer_name`/`producer_version` (default: `c3` and this crate's version).
    pub fn set_producer(&mut self, name: impl Into<String>, version: impl Into<String>) {
        self.producer_name = name.into();
        self.producer_version = version.into();
    }

    /// Adds a `metadata_props` entry (e.g. the source checkpoint's hash).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.push((key.into(), value.into()));
    }

    /// Overrides the IR version (default [`crate::IR_VERSION`]).
    pub fn set_ir_version(&mut self, version: i64) {
        self.ir_version = version;
    }

    /// The IR version that will be written.
    pub fn ir_version(&self) -> i64 {
        self.ir_version
    }

    /// Imported opsets as (domain, version); "" is the default domain.
    pub fn opsets(&self) -> &[(String, i64)] {
        &self.opsets
    }

    /// Total bytes of all initializers.
    pub fn initializer_bytes(&self) -> u64 {
        self.initializers.iter().map(|i| i.byte_len).sum()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The whole model as one in-memory `ModelProto`, every initializer inline (reads
    /// streamed sources). For small models and tests; use [`Model::write`] for real ones.
    pub fn to_proto(&self) -> Result<ModelProto> {
        let memory = Path::new("<memory>");
        let bytes = self.initializer_bytes();
        if bytes > PROTO_INLINE_LIMIT {
            return Err(Error::TooLargeInline {
                path: memory.to_owned(),
                bytes,
            });
        }
        let tensors = self
            .initializers
            .iter()
            .map(|i| i.to_inline(memory))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.proto_with(tensors))
    }

    /// The `ModelProto` with the given initializer tensors (inline or external refs).
    pub(crate) fn proto_with(&self, initializer: Vec<TensorProto>) -> ModelProto {
        let graph = GraphProto {
            name: Some(self.graph_name.clone()),
            node: self.nodes.clone(),
            input: self.inputs.clone(),
            output: self.outputs.clone(),
            initializer,
            ..Default::default()
        };
        ModelProto {
            ir_version: Some(self.ir_version),
            producer_name: Some(self.producer_name.clone()),
            producer_version: Some(self.producer_version.clone()),
            opset_import: self
                .opsets
                .iter()
                .map(|(d, v)| OperatorSetIdProto {
                    domain: Some(d.clone()),
                    version: Some(*v),
                })
                .collect(),
            metadata_props: self
                .metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect(),
            graph: Some(graph),
            ..Default::default()
        }
    }
}
