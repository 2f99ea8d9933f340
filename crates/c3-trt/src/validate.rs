//! Checks an export's ONNX graphs against what TensorRT's ONNX parser accepts, before
//! anyone spends an hour on a GPU finding out: standard-domain ops only (contrib ops
//! such as `com.microsoft:MatMulNBits` need plugins we do not ship), element types
//! TensorRT represents, no multi-output `Attention` (TensorRT 10.16+ rejects it), and
//! the manifest's inputs present in the graph (the profiles are built from them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use c3_core::ExportManifest;
use c3_onnx::proto::tensor_proto::DataType;
use c3_onnx::proto::{GraphProto, ModelProto, TypeProto, ValueInfoProto, type_proto};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::profiles::ModelKind;

/// Element types TensorRT has (TensorRT 10/11 `DataType`, by their ONNX names).
const TRT_DTYPES: &[DataType] = &[
    DataType::Float,
    DataType::Float16,
    DataType::Bfloat16,
    DataType::Int64,
    DataType::Int32,
    DataType::Int8,
    DataType::Uint8,
    DataType::Bool,
    DataType::Float8e4m3fn,
    DataType::Int4,
    DataType::Float4e2m1,
];

/// What the check saw in one model, for the dry-run report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCheck {
    pub model: ModelKind,
    pub file: PathBuf,
    pub nodes: usize,
    /// Distinct operator types.
    pub op_types: usize,
}

/// Validates the three models of the export in `dir`.
pub fn validate_export(dir: &Path, m: &ExportManifest) -> Result<Vec<ModelCheck>> {
    ModelKind::ALL
        .iter()
        .map(|&kind| {
            let info = kind.info(m);
            let path = dir.join(&info.file);
            let proto = c3_onnx::load_model(&path)?;
            let inputs: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
            validate_model(&proto, &path, &m.target, &inputs)?;
            let (nodes, op_types) = counts(&proto);
            Ok(ModelCheck {
                model: kind,
                file: path,
                nodes,
                op_types,
            })
        })
        .collect()
}

/// Validates one decoded model. `path` names it in errors, `target` is the export's
/// `target` (for the hint), `inputs` the graph inputs the manifest promises.
pub fn validate_model(
    model: &ModelProto,
    path: &Path,
    target: &str,
    inputs: &[&str],
) -> Result<()> {
    let foreign: Vec<String> = c3_onnx::op_types(model)
        .into_iter()
        .filter(|(d, _)| !c3_onnx::is_standard_domain(d))
        .map(|(d, op)| format!("`{d}:{op}`"))
        .collect();
    if !foreign.is_empty() {
        let hint = if target == "ort" {
            " (this export was made with `--target ort`; re-export with `c3 export CKPT --target tensorrt`)"
        } else {
            " (TensorRT needs a plugin for them; re-export with `--target tensorrt`)"
        };
        return Err(Error::UnsupportedOp {
            model: path.to_owned(),
            op: foreign.join(", "),
            hint: hint.to_owned(),
        });
    }
    let Some(graph) = &model.graph else {
        return Err(Error::model(path, "no graph"));
    };
    let declared: BTreeSet<&str> = graph
        .input
        .iter()
        .filter_map(|i| i.name.as_deref())
        .collect();
    if let Some(missing) = inputs.iter().find(|n| !declared.contains(**n)) {
        return Err(Error::model(
            path,
            format!("the manifest lists input `{missing}`, but the graph has no such input"),
        ));
    }
    for f in &model.functions {
        // Model-local functions: their ops were checked above; check Attention too.
        check_nodes(&f.node, path)?;
    }
    check_graph(graph, path)
}

fn check_graph(g: &GraphProto, path: &Path) -> Result<()> {
    for vi in g.input.iter().chain(&g.output).chain(&g.value_info) {
        check_value_info(vi, path)?;
    }
    for t in &g.initializer {
        check_dtype(
            t.data_type.unwrap_or(0),
            t.name.as_deref().unwrap_or("?"),
            path,
        )?;
    }
    check_nodes(&g.node, path)
}

fn check_nodes(nodes: &[c3_onnx::proto::NodeProto], path: &Path) -> Result<()> {
    for n in nodes {
        let name = n
            .name
            .clone()
            .unwrap_or_else(|| n.output.first().cloned().unwrap_or_default());
        let op = n.op_type.as_deref().unwrap_or("");
        if op == "Attention" && c3_onnx::is_standard_domain(n.domain.as_deref().unwrap_or("")) {
            let outputs = n.output.iter().filter(|o| !o.is_empty()).count();
            if outputs > 1 {
                return Err(Error::MultiOutputAttention {
                    model: path.to_owned(),
                    node: name,
                    outputs,
                });
            }
        }
        for a in &n.attribute {
            // `Cast(to=DOUBLE)` and `Constant(value=<f64 tensor>)` create such tensors
            // even when no value_info records them.
            if op == "Cast" && a.name.as_deref() == Some("to") {
                check_dtype(a.i.unwrap_or(0) as i32, &format!("{name} (Cast to)"), path)?;
            }
            for t in a.t.iter().chain(&a.tensors) {
                check_dtype(
                    t.data_type.unwrap_or(0),
                    &format!("{name} ({op} attribute)"),
                    path,
                )?;
            }
            for sub in a.g.iter().chain(&a.graphs) {
                check_graph(sub, path)?;
            }
        }
    }
    Ok(())
}

fn check_value_info(vi: &ValueInfoProto, path: &Path) -> Result<()> {
    let name = vi.name.as_deref().unwrap_or("?");
    match vi.r#type.as_ref().and_then(tensor_elem) {
        Some(code) => check_dtype(code, name, path),
        None => Ok(()), // untyped value_info: nothing to judge
    }
}

fn tensor_elem(t: &TypeProto) -> Option<i32> {
    match t.value.as_ref()? {
        type_proto::Value::TensorType(tt) => tt.elem_type,
        _ => None,
    }
}

fn check_dtype(code: i32, tensor: &str, path: &Path) -> Result<()> {
    match DataType::try_from(code) {
        Ok(dt) if TRT_DTYPES.contains(&dt) => Ok(()),
        Ok(dt) => Err(Error::UnsupportedDtype {
            model: path.to_owned(),
            tensor: tensor.to_owned(),
            dtype: dt.as_str_name().to_owned(),
        }),
        Err(_) => Err(Error::UnsupportedDtype {
            model: path.to_owned(),
            tensor: tensor.to_owned(),
            dtype: format!("code {code}"),
        }),
    }
}

fn counts(model: &ModelProto) -> (usize, usize) {
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    (nodes, c3_onnx::op_types(model).len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Variant, write_export};
    use c3_onnx::{Dim, ElemType, GraphBuilder, Value};

    fn graph(
        f: impl FnOnce(&mut GraphBuilder, &Value) -> c3_onnx::Result<Value>,
        dt: ElemType,
    ) -> anyhow::Result<ModelProto> {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", ElemType::F32, &[Dim::sym("batch")])?;
        let y = f(&mut g, &x)?;
        g.output(&y, dt, &[Dim::sym("batch")])?;
        Ok(g.finish().to_proto()?)
    }

    #[test]
    fn standard_export_passes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let m = write_export(dir.path(), Variant::Clean)?;
        let checks = validate_export(dir.path(), &m)?;
        assert_eq!(checks.len(), 3);
        Ok(())
    }

    #[test]
    fn ort_export_with_contrib_op_is_rejected() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let m = write_export(dir.path(), Variant::Contrib)?;
        let err = validate_export(dir.path(), &m).unwrap_err().to_string();
        assert!(
            err.contains("decoder.onnx")
                && err.contains("com.microsoft:MatMulNBits")
                && err.contains("--target tensorrt"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn double_is_rejected_with_the_tensor_named() -> anyhow::Result<()> {
        let p = graph(|g, x| g.cast(x, ElemType::F64), ElemType::F64)?;
        let err = validate_model(&p, Path::new("m.onnx"), "tensorrt", &["x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.onnx") && err.contains("DOUBLE"), "{err}");
        // Cast back so the graph output stays f32: only the node is at fault.
        let p = graph(
            |g, x| {
                let u = g.cast(x, ElemType::U64)?;
                g.cast(&u, ElemType::F32)
            },
            ElemType::F32,
        )?;
        let err = validate_model(&p, Path::new("m.onnx"), "tensorrt", &["x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("Cast to") && err.contains("UINT64"), "{err}");
        Ok(())
    }

    #[test]
    fn multi_output_attention_is_rejected() -> anyhow::Result<()> {
        let p = graph(
            |g, x| {
                let outs = g
                    .node("Attention", &[x, x, x])
                    .output_types(&[ElemType::F32; 3])
                    .outputs(3)?;
                Ok(outs[0].clone())
            },
            ElemType::F32,
        )?;
        let err = validate_model(&p, Path::new("d.onnx"), "tensorrt", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("d.onnx") && err.contains("Attention") && err.contains("3 outputs"),
            "{err}"
        );
        // Single-output Attention is fine.
        let p = graph(
            |g, x| {
                g.node("Attention", &[x, x, x])
                    .output_types(&[ElemType::F32])
                    .output()
            },
            ElemType::F32,
        )?;
        validate_model(&p, Path::new("d.onnx"), "tensorrt", &[])?;
        Ok(())
    }

    #[test]
    fn missing_manifest_input_is_named() -> anyhow::Result<()> {
        let p = graph(|g, x| g.neg(x), ElemType::F32)?;
        let err = validate_model(&p, Path::new("e.onnx"), "tensorrt", &["input_ids"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("e.onnx") && err.contains("`input_ids`"),
            "{err}"
        );
        Ok(())
    }
}
