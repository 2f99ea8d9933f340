//! `GraphBuilder`: graph inputs/outputs, initializers, nodes and readable unique names.
//!
//! Names follow the checkpoint: a scope such as `model.layers.3.self_attn` (dotted, like
//! the safetensors keys) prefixes node names as `model.layers.3.self_attn/MatMul_q`,
//! their outputs as `model.layers.3.self_attn/MatMul_q_output_0`, and
//! [`GraphBuilder::key`] gives parameter names such as `model.layers.3.self_attn.q_proj.weight`.
//!
//! Every value is handed out as a typed [`Value`]; each node's input types are checked
//! against its op's rules ([`crate::types`]) as it is added.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::attr::Attr;
use crate::dtype::{Dim, ElemType, tensor_type};
use crate::error::{Error, Result};
use crate::model::{Initializer, Model};
use crate::proto::{NodeProto, ValueInfoProto};
use crate::tensor::{Element, TensorData, le_bytes, numel};
use crate::types;
use crate::value::Value;

/// Default-domain (`ai.onnx`) opset the builder targets.
pub const DEFAULT_OPSET: i64 = 21;
/// ONNX IR version written (ONNX Runtime 1.31 accepts up to 13; opset 21 needs IR >= 10).
pub const IR_VERSION: i64 = 10;
/// Microsoft contrib-op domain (ONNX Runtime only; TensorRT rejects it).
pub const MS_DOMAIN: &str = "com.microsoft";

/// Builds one ONNX graph in topological order.
///
/// Every node input must already be defined (graph input, initializer or an earlier
/// node's output), so the node list is always topologically sorted, and its element
/// type must fit the op, so a missing `Cast` fails at the call that made the node,
/// naming it.
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    scope: Vec<String>,
    pub(crate) inputs: Vec<ValueInfoProto>,
    pub(crate) outputs: Vec<ValueInfoProto>,
    pub(crate) initializers: Vec<Initializer>,
    pub(crate) nodes: Vec<NodeProto>,
    /// Every value defined so far, with its element type.
    defined: HashMap<String, ElemType>,
    node_names: HashSet<String>,
    /// Opset version per domain ("" is the default domain); only used domains are kept.
    opsets: BTreeMap<String, i64>,
    /// Small constants already emitted, keyed by (dtype, shape, bytes), so that e.g.
    /// every layer's `Unsqueeze` axes share one `Constant` node.
    pub(crate) const_cache: HashMap<(ElemType, Vec<i64>, Vec<u8>), Value>,
}

impl GraphBuilder {
    /// An empty graph named `name`, targeting default-domain opset [`DEFAULT_OPSET`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            scope: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            initializers: Vec::new(),
            nodes: Vec::new(),
            defined: HashMap::new(),
            node_names: HashSet::new(),
            opsets: BTreeMap::from([(String::new(), DEFAULT_OPSET)]),
            const_cache: HashMap::new(),
        }
    }

    /// Sets the opset version imported for `domain` ("" = default domain). Other domains
    /// are imported at version 1 when a node first uses them.
    pub fn set_opset(&mut self, domain: &str, version: i64) {
        self.opsets.insert(domain.to_owned(), version);
    }

    /// The opset version of the default domain.
    pub fn opset(&self) -> i64 {
        self.opsets.get("").copied().unwrap_or(DEFAULT_OPSET)
    }

    // ---- scopes and names -------------------------------------------------------------

    /// Enters scope `segment` (may itself contain dots, e.g. `model.layers.3`).
    pub fn push_scope(&mut self, segment: impl Into<String>) {
        self.scope.push(segment.into());
    }

    /// Leaves the innermost scope (no-op at top level).
    pub fn pop_scope(&mut self) {
        self.scope.pop();
    }

    /// Runs `f` inside scope `segment`, leaving it afterwards even if `f` fails.
    pub fn scoped<R>(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self) -> R) -> R {
        self.push_scope(segment);
        let r = f(self);
        self.pop_scope();
        r
    }

    /// The current scope, dotted (`model.layers.3.self_attn`); empty at top level.
    pub fn scope(&self) -> String {
        self.scope.join(".")
    }

    /// The checkpoint key of `leaf` in the current scope (`<scope>.<leaf>`).
    pub fn key(&self, leaf: &str) -> String {
        if self.scope.is_empty() {
            leaf.to_owned()
        } else {
            format!("{}.{leaf}", self.scope())
        }
    }

    /// The defined value named `name`, if any (e.g. a tied weight added before).
    pub fn value(&self, name: &str) -> Option<Value> {
        self.defined.get(name).map(|&elem| Value::new(name, elem))
    }

    fn define(&mut self, name: &str, elem: ElemType) -> Result<Value> {
        if self.defined.contains_key(name) {
            return Err(Error::DuplicateName(name.to_owned()));
        }
        self.defined.insert(name.to_owned(), elem);
        Ok(Value::new(name, elem))
    }

    /// A fresh node name `<scope>/<op>[_<hint>][_<n>]` whose default output names are
    /// free too (user-chosen value names could otherwise collide with them).
    fn fresh_node_name(&self, op_type: &str, hint: Option<&str>, n_outputs: usize) -> String {
        let mut base = if self.scope.is_empty() {
            op_type.to_owned()
        } else {
            format!("{}/{op_type}", self.scope())
        };
        if let Some(h) = hint {
            base = format!("{base}_{h}");
        }
        let free = |cand: &str| {
            !self.node_names.contains(cand)
                && (0..n_outputs).all(|i| !self.defined.contains_key(&output_name(cand, i)))
        };
        if free(&base) {
            return base;
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|c| free(c))
            .unwrap_or(base)
    }

    // ---- graph inputs, outputs, initializers ---------------------------------------------

    /// Declares graph input `name`.
    pub fn input(&mut self, name: &str, dtype: ElemType, shape: &[Dim]) -> Result<Value> {
        let v = self.define(name, dtype)?;
        self.inputs.push(value_info(name, dtype, shape));
        Ok(v)
    }

    /// Marks the defined value `v` as a graph output with this dtype and shape. The
    /// dtype is the contract consumers rely on, so it is spelled out and must be `v`'s.
    pub fn output(&mut self, v: &Value, dtype: ElemType, shape: &[Dim]) -> Result<()> {
        let name = v.name();
        match self.defined.get(name) {
            None => return Err(Error::UndefinedOutput(name.to_owned())),
            Some(&actual) if actual != dtype => {
                return Err(Error::OutputType {
                    name: name.to_owned(),
                    declared: dtype,
                    actual,
                });
            }
            Some(_) => {}
        }
        self.outputs.push(value_info(name, dtype, shape));
        Ok(())
    }

    /// Adds initializer `name` (verbatim, normally the checkpoint key). In-memory bytes are checked against dtype and shape now; streamed sources
    /// when the model is written.
    pub fn initializer(
        &mut self,
        name: &str,
        dtype: ElemType,
        shape: &[i64],
        data: impl Into<TensorData>,
    ) -> Result<Value> {
        let data = data.into();
        let expected = numel(shape)
            .and_then(|n| n.checked_mul(dtype.size() as u64))
            .ok_or_else(|| Error::InvalidShape {
                name: name.to_owned(),
                shape: shape.to_vec(),
            })?;
        if let TensorData::Bytes(b) = &data
            && b.len() as u64 != expected
        {
            return Err(Error::InitializerSize {
                name: name.to_owned(),
                dtype: dtype.name(),
                shape: shape.to_vec(),
                expected,
                got: b.len() as u64,
            });
        }
        let v = self.define(name, dtype)?;
        self.initializers.push(Initializer {
            name: name.to_owned(),
            dtype,
            shape: shape.to_vec(),
            byte_len: expected,
            data,
        });
        Ok(v)
    }

    /// Adds an initializer from typed values (dtype inferred from `T`).
    pub fn initializer_from<T: Element>(
        &mut self,
        name: &str,
        shape: &[i64],
        values: &[T],
    ) -> Result<Value> {
        self.initializer(name, T::DTYPE, shape, le_bytes(values))
    }

    // ---- nodes --------------------------------------------------------------------------

    /// Starts a node of `op_type` (default domain) reading `inputs`. Finish it with
    /// [`NodeBuilder::output`] or [`NodeBuilder::outputs`].
    pub fn node(&mut self, op_type: &str, inputs: &[&Value]) -> NodeBuilder<'_> {
        let inputs: Vec<Option<&Value>> = inputs.iter().map(|v| Some(*v)).collect();
        self.node_with_optional(op_type, &inputs)
    }

    /// [`Self::node`] with optional inputs: `None` is an omitted input (`""` in ONNX).
    pub fn node_with_optional(
        &mut self,
        op_type: &str,
        inputs: &[Option<&Value>],
    ) -> NodeBuilder<'_> {
        NodeBuilder {
            g: self,
            op_type: op_type.to_owned(),
            inputs: inputs.iter().map(|v| v.cloned()).collect(),
            attrs: Vec::new(),
            domain: String::new(),
            hint: None,
            output_names: None,
            output_types: None,
        }
    }

    /// Adds a default-domain node without attributes; returns its `n_outputs` outputs.
    pub fn op(&mut self, op_type: &str, inputs: &[&Value], n_outputs: usize) -> Result<Vec<Value>> {
        self.node(op_type, inputs).outputs(n_outputs)
    }

    /// Finishes the graph into a [`Model`] with IR version [`IR_VERSION`].
    pub fn finish(self) -> Model {
        Model {
            graph_name: self.name,
            inputs: self.inputs,
            outputs: self.outputs,
            nodes: self.nodes,
            initializers: self.initializers,
            opsets: self.opsets.into_iter().collect(),
            ir_version: IR_VERSION,
            producer_name: "c3".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            metadata: Vec::new(),
        }
    }
}

/// A node being added; see [`GraphBuilder::node`].
#[must_use = "a node is added only by .output() or .outputs(n)"]
pub struct NodeBuilder<'g> {
    g: &'g mut GraphBuilder,
    op_type: String,
    inputs: Vec<Option<Value>>,
    attrs: Vec<(String, Attr)>,
    domain: String,
    hint: Option<String>,
    output_names: Option<Vec<String>>,
    output_types: Option<Vec<ElemType>>,
}

impl NodeBuilder<'_> {
    /// Adds attribute `name`.
    pub fn attr(mut self, name: &str, value: impl Into<Attr>) -> Self {
        self.attrs.push((name.to_owned(), value.into()));
        self
    }

    /// Puts the node in `domain` (e.g. [`MS_DOMAIN`]); imported at version 1 unless set.
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = domain.to_owned();
        self
    }

    /// Suffix for the node name: `<scope>/<op>_<hint>` (e.g. `MatMul_q`).
    pub fn hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }

    /// Names the outputs explicitly (e.g. `logits`) instead of `<node>_output_<i>`.
    pub fn output_names(mut self, names: &[&str]) -> Self {
        self.output_names = Some(names.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// The output element types of an op without rules in [`crate::types`] (its
    /// inputs are then not checked either).
    pub fn output_types(mut self, types: &[ElemType]) -> Self {
        self.output_types = Some(types.to_vec());
        self
    }

    /// Adds the node with a single output and returns it.
    pub fn output(self) -> Result<Value> {
        let mut v = self.outputs(1)?;
        Ok(v.remove(0))
    }

    /// Adds the node with `n` outputs (ignored if [`Self::output_names`] was given) and
    /// returns them, typed by the op's rules or [`Self::output_types`].
    pub fn outputs(self, n: usize) -> Result<Vec<Value>> {
        let g = self.g;
        let n = self.output_names.as_ref().map_or(n, Vec::len);
        let name = g.fresh_node_name(&self.op_type, self.hint.as_deref(), n);
        if let Some(bad) = self
            .inputs
            .iter()
            .flatten()
            .find(|v| !g.defined.contains_key(v.name()))
        {
            return Err(Error::UndefinedInput {
                node: name,
                op_type: self.op_type,
                input: bad.name().to_owned(),
            });
        }
        let types =
            match types::output_types(&self.op_type, &self.domain, &self.inputs, &self.attrs, n) {
                Err(detail) => {
                    return Err(Error::TypeMismatch {
                        node: name,
                        op_type: self.op_type,
                        detail,
                    });
                }
                Ok(rules) => match (self.output_types, rules) {
                    (Some(given), _) => given,
                    (None, Some(inferred)) => inferred,
                    (None, None) => {
                        return Err(Error::UnknownOutputTypes {
                            node: name,
                            op_type: self.op_type,
                        });
                    }
                },
            };
        if types.len() < n {
            return Err(Error::TypeMismatch {
                node: name,
                op_type: self.op_type,
                detail: format!("{n} outputs asked for, the op has {}", types.len()),
            });
        }
        let outputs = self
            .output_names
            .unwrap_or_else(|| (0..n).map(|i| output_name(&name, i)).collect());
        let mut values = Vec::with_capacity(n);
        for (o, elem) in outputs.iter().zip(types) {
            values.push(g.define(o, elem)?);
        }
        if !self.domain.is_empty() {
            g.opsets.entry(self.domain.clone()).or_insert(1);
        }
        g.node_names.insert(name.clone());
        g.nodes.push(NodeProto {
            name: Some(name),
            op_type: Some(self.op_type),
            domain: Some(self.domain),
            input: self
                .inputs
                .iter()
                .map(|v| v.as_ref().map_or_else(String::new, |v| v.name().to_owned()))
                .collect(),
            output: outputs,
            attribute: self.attrs.iter().map(|(k, v)| v.to_proto(k)).collect(),
            ..Default::default()
        });
        Ok(values)
    }
}

fn output_name(node: &str, i: usize) -> String {
    format!("{node}_output_{i}")
}

fn value_info(name: &str, dtype: ElemType, shape: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(tensor_type(dtype, Some(shape))),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_scopes_and_stay_unique() -> Result<()> {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", ElemType::F32, &[Dim::sym("batch"), Dim::Fixed(4)])?;
        g.push_scope("model.layers.3");
        let (a, b) = g.scoped("self_attn", |g| -> Result<_> {
            assert_eq!(
                g.key("q_proj.weight"),
                "model.layers.3.self_attn.q_proj.weight"
            );
            let a = g.node("Neg", &[&x]).hint("q").output()?;
            let b = g.node("Neg", &[&x]).hint("q").output()?;
            Ok((a, b))
        })?;
        assert_eq!(a.name(), "model.layers.3.self_attn/Neg_q_output_0");
        assert_eq!(b.name(), "model.layers.3.self_attn/Neg_q_1_output_0");
        assert_eq!(g.scope(), "model.layers.3");
        Ok(())
    }

    #[test]
    fn rejects_undefined_inputs_and_bad_sizes() {
        let mut g = GraphBuilder::new("t");
        let nope = Value::new("nope", ElemType::F32);
        let err = g.op("Neg", &[&nope], 1).unwrap_err();
        assert!(
            err.to_string().contains("`Neg`") && err.to_string().contains("`nope`"),
            "{err}"
        );
        let err = g
            .initializer("w", ElemType::F32, &[2, 2], vec![0u8; 15])
            .unwrap_err();
        assert!(err.to_string().contains("tensor `w`"), "{err}");
        assert!(g.input("x", ElemType::F32, &[]).is_ok());
        assert!(matches!(
            g.input("x", ElemType::F32, &[]),
            Err(Error::DuplicateName(_))
        ));
        assert!(matches!(
            g.output(&Value::new("y", ElemType::F32), ElemType::F32, &[]),
            Err(Error::UndefinedOutput(_))
        ));
    }

    #[test]
    fn contrib_domain_imported_only_when_used() -> Result<()> {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", ElemType::F32, &[Dim::Fixed(2)])?;
        assert!(!g.opsets.contains_key(MS_DOMAIN));
        g.node("FastGelu", &[&x])
            .domain(MS_DOMAIN)
            .output_types(&[ElemType::F32])
            .output()?;
        assert_eq!(g.opsets.get(MS_DOMAIN), Some(&1));
        Ok(())
    }
}
