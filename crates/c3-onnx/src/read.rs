//! Reading ONNX models back: decoding with clear errors, and listing the operators a
//! model uses (the TensorRT dry run rejects `com.microsoft` contrib ops with it).

use std::collections::BTreeSet;
use std::path::Path;

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::{AttributeProto, GraphProto, ModelProto, SparseTensorProto, TensorProto};

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

/// Every external-data `location` the model's tensors name (initializers, sparse
/// initializers, tensor attributes, in subgraphs and model-local functions too). ONNX
/// Runtime opens these paths relative to the model, so a loader of untrusted models
/// checks them before handing the model over.
pub fn external_data_locations(model: &ModelProto) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(g) = &model.graph {
        graph_locations(g, &mut out);
    }
    for f in &model.functions {
        for a in f
            .node
            .iter()
            .flat_map(|n| &n.attribute)
            .chain(&f.attribute_proto)
        {
            attribute_locations(a, &mut out);
        }
    }
    out
}

fn graph_locations(g: &GraphProto, out: &mut BTreeSet<String>) {
    for t in &g.initializer {
        tensor_locations(t, out);
    }
    for s in &g.sparse_initializer {
        sparse_locations(s, out);
    }
    for a in g.node.iter().flat_map(|n| &n.attribute) {
        attribute_locations(a, out);
    }
}

fn attribute_locations(a: &AttributeProto, out: &mut BTreeSet<String>) {
    for t in a.t.iter().chain(&a.tensors) {
        tensor_locations(t, out);
    }
    for s in a.sparse_tensor.iter().chain(&a.sparse_tensors) {
        sparse_locations(s, out);
    }
    for sub in a.g.iter().chain(&a.graphs) {
        graph_locations(sub, out);
    }
}

fn sparse_locations(s: &SparseTensorProto, out: &mut BTreeSet<String>) {
    for t in s.values.iter().chain(&s.indices) {
        tensor_locations(t, out);
    }
}

fn tensor_locations(t: &TensorProto, out: &mut BTreeSet<String>) {
    // Whatever `data_location` says: a location that is present is what a reader
    // might follow.
    for e in &t.external_data {
        if e.key.as_deref() == Some("location") {
            out.insert(e.value.clone().unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dim, ElemType, GraphBuilder, MS_DOMAIN};

    #[test]
    fn lists_ops_with_domains() -> Result<()> {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", ElemType::F32, &[Dim::Fixed(2)])?;
        let y = g.neg(&x)?;
        let z = g
            .node("FastGelu", &[&y])
            .domain(MS_DOMAIN)
            .output_types(&[ElemType::F32])
            .output()?;
        g.output(&z, ElemType::F32, &[Dim::Fixed(2)])?;
        let proto = g.finish().to_proto()?;
        let ops = op_types(&proto);
        assert!(ops.contains(&(String::new(), "Neg".to_owned())));
        assert!(ops.contains(&(MS_DOMAIN.to_owned(), "FastGelu".to_owned())));
        let foreign: Vec<_> = ops.iter().filter(|(d, _)| !is_standard_domain(d)).collect();
        assert_eq!(foreign.len(), 1);
        Ok(())
    }

    #[test]
    fn external_locations_are_found_in_subgraphs_too() {
        use crate::proto::{NodeProto, StringStringEntryProto};
        let ext = |loc: &str| TensorProto {
            external_data: vec![StringStringEntryProto {
                key: Some("location".into()),
                value: Some(loc.into()),
            }],
            ..Default::default()
        };
        let body = GraphProto {
            initializer: vec![ext("../body.data")],
            ..Default::default()
        };
        let node = NodeProto {
            attribute: vec![AttributeProto {
                g: Some(body),
                t: Some(ext("/abs.data")),
                ..Default::default()
            }],
            ..Default::default()
        };
        let model = ModelProto {
            graph: Some(GraphProto {
                node: vec![node],
                initializer: vec![ext("model.onnx.data"), TensorProto::default()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let got: Vec<_> = external_data_locations(&model).into_iter().collect();
        assert_eq!(got, ["../body.data", "/abs.data", "model.onnx.data"]);
    }

    #[test]
    fn empty_input_is_not_a_model() {
        let err = decode_model(&[], Path::new("empty.onnx")).unwrap_err();
        assert!(err.to_string().contains("empty.onnx"), "{err}");
    }
}
