//! Reading ONNX models back: decoding with clear errors, and listing the operators a
//! model uses (the TensorRT dry run rejects `com.microsoft` contrib ops with it).

use std::collections::BTreeSet;
use std::path::Path;

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::{GraphProto, ModelProto};

/// Reads and decodes the `.onnx` file at `path`. External data files are not read
/// (tensors keep their `location/offset/length` references).
///
/// Besides protobuf decoding errors, a file lacking a graph, IR version or opset import
/// is rejected: a file truncated exactly between two fields still decodes otherwise.
pub fn load_model(path: impl AsRef<Path>) -> Result<ModelProto> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_model(&bytes, path)
}

/// Decodes `bytes` as a model; `path` only names the source in errors.
pub fn decode_model(bytes: &[u8], path: &Path) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes).map_err(|source| Error::Decode {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: &str| Error::InvalidModel {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if model.ir_version.unwrap_or(0) <= 0 {
        return Err(invalid("no ir_version"));
    }
    if model.graph.is_none() {
        return Err(invalid("no graph"));
    }
    if model.opset_import.is_empty() {
        return Err(invalid("no opset_import"));
    }
    Ok(model)
}

/// Whether `domain` is the standard ONNX operator domain (`""` or `ai.onnx`).
pub fn is_standard_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// Every (domain, op_type) the model uses, including nodes in subgraphs (`If`, `Loop`,
/// `Scan` bodies) and in model-local functions. The default domain is reported as "".
pub fn op_types(model: &ModelProto) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    if let Some(g) = &model.graph {
        collect_graph(g, &mut ops);
    }
    for f in &model.functions {
        for n in &f.node {
            ops.insert((
                n.domain.clone().unwrap_or_default(),
                n.op_type.clone().unwrap_or_default(),
            ));
        }
    }
    ops
}

fn collect_graph(g: &GraphProto, ops: &mut BTreeSet<(String, String)>) {
    for n in &g.node {
        ops.insert((
            n.domain.clone().unwrap_or_default(),
            n.op_type.clone().unwrap_or_default(),
        ));
        for a in &n.attribute {
            for sub in a.g.iter().chain(&a.graphs) {
                collect_graph(sub, ops);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Dim, GraphBuilder, MS_DOMAIN};

    #[test]
    fn lists_ops_with_domains() -> Result<()> {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", DType::F32, &[Dim::Fixed(2)])?;
        let y = g.neg(&x)?;
        let z = g.node("FastGelu", &[&y]).domain(MS_DOMAIN).output()?;
        g.output(&z, DType::F32, &[Dim::Fixed(2)])?;
        let proto = g.finish().to_proto()?;
        let ops = op_types(&proto);
        assert!(ops.contains(&(String::new(), "Neg".to_owned())));
        assert!(ops.contains(&(MS_DOMAIN.to_owned(), "FastGelu".to_owned())));
        let foreign: Vec<_> = ops.iter().filter(|(d, _)| !is_standard_domain(d)).collect();
        assert_eq!(foreign.len(), 1);
        Ok(())
    }

    #[test]
    fn empty_input_is_not_a_model() {
        let err = decode_model(&[], Path::new("empty.onnx")).unwrap_err();
        assert!(err.to_string().contains("empty.onnx"), "{err}");
    }
}
