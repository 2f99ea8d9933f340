//! Element-type rules of the ops the builder knows, from the ONNX operator specs
//! (opset 21) and ONNX Runtime's contrib-op specs: which inputs must share a type
//! (a spec's type variable `T`), which must be one given type, and what each output
//! is. They run as each node is added, so a missing `Cast` is a build error naming
//! the node and both types, not a type error when ONNX Runtime loads the model.

use crate::attr::Attr;
use crate::dtype::ElemType;
use crate::graph::MS_DOMAIN;
use crate::value::Value;

/// Why a node's inputs are refused (the caller adds the node's name).
pub(crate) type Mismatch = String;

/// Checks the inputs of an `op` node in `domain` (`None`: an omitted optional input)
/// with `n` outputs and returns their types, or `Ok(None)` for an op these rules do
/// not know.
pub(crate) fn output_types(
    op: &str,
    domain: &str,
    inputs: &[Option<Value>],
    attrs: &[(String, Attr)],
    n: usize,
) -> Result<Option<Vec<ElemType>>, Mismatch> {
    use ElemType::{Bool, I32, I64};
    let ins = Inputs(inputs);
    let all: Vec<usize> = (0..inputs.len()).collect();
    let types = match (domain, op) {
        (
            "",
            "Neg" | "Sqrt" | "Reciprocal" | "Sigmoid" | "Sin" | "Cos" | "Exp" | "Log" | "Tanh"
            | "Relu" | "Erf" | "Abs" | "Identity" | "Softmax" | "Transpose" | "Flatten" | "Floor"
            | "Ceil" | "Round" | "Sign",
        ) => vec![ins.first()?],
        // Data first, then int64 shapes or axes.
        (
            "",
            "Reshape" | "Expand" | "Unsqueeze" | "Squeeze" | "ReduceMean" | "ReduceSum"
            | "ReduceMax" | "Trilu" | "Tile",
        ) => {
            ins.all_are(1.., I64)?;
            vec![ins.first()?]
        }
        ("", "Gather" | "CumSum") => {
            ins.all_int(1..)?;
            vec![ins.first()?]
        }
        ("", "GatherND") => {
            ins.is(1, I64)?;
            vec![ins.first()?]
        }
        // starts, ends, axes and steps share one index type (`Tind`).
        ("", "Slice") => {
            ins.all_int(1..)?;
            ins.same(&[1, 2, 3, 4])?;
            vec![ins.first()?]
        }
        ("", "Add" | "Sub" | "Mul" | "Div" | "Mod" | "MatMul" | "Max" | "Min" | "Sum" | "Gemm") => {
            vec![ins.same(&all)?]
        }
        ("", "Concat" | "Range") => vec![ins.same(&all)?],
        ("", "Split") => {
            ins.all_are(1.., I64)?;
            vec![ins.first()?; n]
        }
        // The exponent has its own type variable (`T1`): x^2 with an int 2 is valid.
        ("", "Pow") => vec![ins.first()?],
        ("", "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual") => {
            ins.same(&all)?;
            vec![Bool]
        }
        ("", "And" | "Or" | "Xor" | "Not") => {
            ins.all_are(0.., Bool)?;
            vec![Bool]
        }
        ("", "Where") => {
            ins.is(0, Bool)?;
            vec![ins.same(&[1, 2])?]
        }
        ("", "Shape") => vec![I64],
        ("", "Cast") => vec![attr_type(attrs, "to")?],
        ("", "Constant") => vec![attr_tensor_type(attrs)?.ok_or("no `value` tensor")?],
        // The fill defaults to a float 0 (ONNX spec).
        ("", "ConstantOfShape") => {
            ins.is(0, I64)?;
            vec![attr_tensor_type(attrs)?.unwrap_or(ElemType::F32)]
        }
        // A and scales are `T1` (float types), B the packed uint8 codes; Y is `T1`.
        (MS_DOMAIN, "MatMulNBits") => {
            ins.is(1, ElemType::U8)?;
            let t = ins.same(&[0, 2, 5])?;
            if !t.is_float() {
                return Err(format!("input 0 {} must be a float type", ins.show(0)));
            }
            vec![t]
        }
        // query, key, value, past K/V and the rotary caches are `T`; the lengths int32.
        // Outputs: attention output, present key, present value.
        (MS_DOMAIN, "GroupQueryAttention") => {
            ins.is(5, I32)?;
            ins.is(6, I32)?;
            let t = ins.same(&[0, 1, 2, 3, 4, 7, 8])?;
            vec![t, t, t]
        }
        // Y takes the scale's type (`V`); inv_std_var is f32 (the default stash type).
        (MS_DOMAIN | "", "SimplifiedLayerNormalization") => {
            let v = ins.same(&[1])?;
            vec![v, ElemType::F32]
        }
        _ => return Ok(None),
    };
    Ok(Some(types))
}

/// A node's inputs, for the rules above (missing indices are omitted inputs).
struct Inputs<'a>(&'a [Option<Value>]);

impl Inputs<'_> {
    fn get(&self, i: usize) -> Option<&Value> {
        self.0.get(i).and_then(Option::as_ref)
    }

    fn show(&self, i: usize) -> String {
        self.get(i)
            .map_or_else(|| "(omitted)".into(), Value::to_string)
    }

    fn first(&self) -> Result<ElemType, Mismatch> {
        self.get(0)
            .map(Value::elem)
            .ok_or_else(|| "input 0 is required".into())
    }

    /// The one type the present inputs among `idx` share.
    fn same(&self, idx: &[usize]) -> Result<ElemType, Mismatch> {
        let mut first: Option<(usize, &Value)> = None;
        for &i in idx {
            let Some(v) = self.get(i) else { continue };
            match first {
                None => first = Some((i, v)),
                Some((j, f)) if f.elem() != v.elem() => {
                    return Err(format!(
                        "input {i} {v} and input {j} {f} must have one element type; add a Cast"
                    ));
                }
                Some(_) => {}
            }
        }
        first
            .map(|(_, v)| v.elem())
            .ok_or_else(|| "a required input is missing".into())
    }

    fn is(&self, i: usize, want: ElemType) -> Result<(), Mismatch> {
        match self.get(i) {
            Some(v) if v.elem() != want => Err(format!("input {i} {v} must be {want}; add a Cast")),
            _ => Ok(()),
        }
    }

    fn all_are(&self, from: std::ops::RangeFrom<usize>, want: ElemType) -> Result<(), Mismatch> {
        (from.start..self.0.len()).try_for_each(|i| self.is(i, want))
    }

    fn all_int(&self, from: std::ops::RangeFrom<usize>) -> Result<(), Mismatch> {
        for i in from.start..self.0.len() {
            if let Some(v) = self.get(i)
                && !matches!(v.elem(), ElemType::I64 | ElemType::I32)
            {
                return Err(format!("input {i} {v} must be int64 or int32; add a Cast"));
            }
        }
        Ok(())
    }
}

fn attr<'a>(attrs: &'a [(String, Attr)], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The element type an int attribute names (`Cast.to`).
fn attr_type(attrs: &[(String, Attr)], name: &str) -> Result<ElemType, Mismatch> {
    match attr(attrs, name) {
        Some(Attr::Int(code)) => i32::try_from(*code)
            .ok()
            .and_then(ElemType::from_onnx)
            .ok_or_else(|| format!("attribute `{name}` = {code} is not a supported type")),
        _ => Err(format!("needs an int attribute `{name}`")),
    }
}

/// The type of the `value` tensor attribute (`Constant`, `ConstantOfShape`).
fn attr_tensor_type(attrs: &[(String, Attr)]) -> Result<Option<ElemType>, Mismatch> {
    match attr(attrs, "value") {
        Some(Attr::Tensor(t)) => t
            .data_type
            .and_then(ElemType::from_onnx)
            .map(Some)
            .ok_or_else(|| "the `value` tensor has no supported type".into()),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Dim, ElemType, Error, GraphBuilder, MS_DOMAIN};

    fn graph() -> (GraphBuilder, crate::Value, crate::Value) {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", ElemType::F16, &[Dim::Fixed(2)]).unwrap();
        let w = g.input("w", ElemType::F32, &[Dim::Fixed(2)]).unwrap();
        (g, x, w)
    }

    #[test]
    fn a_mismatched_add_is_refused_naming_node_and_types() {
        let (mut g, x, w) = graph();
        let err = g.scoped("norm", |g| g.add(&x, &w)).unwrap_err();
        assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "node `norm/Add` (Add): input 1 `w` (f32) and input 0 `x` (f16) must have one element type; add a Cast"
        );
        // Nothing was added: the graph stays valid.
        assert!(g.value("norm/Add_output_0").is_none());
    }

    #[test]
    fn a_missing_cast_is_refused_and_the_cast_fixes_it() {
        let (mut g, x, w) = graph();
        // Where's condition must be bool; an int64 mask needs its Cast.
        let mask = g.input("mask", ElemType::I64, &[Dim::Fixed(2)]).unwrap();
        let err = g.where_(&mask, &x, &x).unwrap_err();
        assert!(
            err.to_string()
                .contains("input 0 `mask` (i64) must be bool; add a Cast"),
            "{err}"
        );
        let cond = g.cast(&mask, ElemType::Bool).unwrap();
        assert_eq!(cond.elem(), ElemType::Bool);
        let xf = g.cast(&x, ElemType::F32).unwrap();
        let y = g.add(&xf, &w).unwrap();
        assert_eq!(g.where_(&cond, &y, &w).unwrap().elem(), ElemType::F32);
    }

    #[test]
    fn outputs_are_typed_by_the_op() {
        let (mut g, x, w) = graph();
        assert_eq!(g.shape_of(&x).unwrap().elem(), ElemType::I64);
        assert_eq!(g.less(&w, &w).unwrap().elem(), ElemType::Bool);
        assert_eq!(g.const_i64s(&[1]).unwrap().elem(), ElemType::I64);
        let shape = g.shape_of(&x).unwrap();
        let e = g.constant_of_shape(&shape, ElemType::F16, 1.0);
        assert_eq!(e.unwrap().elem(), ElemType::F16);
        // MatMulNBits: scales share A's type, B is uint8 codes.
        let b = g.input("b", ElemType::U8, &[Dim::Fixed(2)]).unwrap();
        let ok = g
            .node("MatMulNBits", &[&w, &b, &w])
            .domain(MS_DOMAIN)
            .output();
        assert_eq!(ok.unwrap().elem(), ElemType::F32);
        let bad = g
            .node("MatMulNBits", &[&x, &b, &w])
            .domain(MS_DOMAIN)
            .output();
        assert!(bad.unwrap_err().to_string().contains("input 2 `w` (f32)"));
    }

    #[test]
    fn unknown_ops_need_their_output_types() {
        let (mut g, x, _) = graph();
        let err = g
            .node("FastGelu", &[&x])
            .domain(MS_DOMAIN)
            .output()
            .unwrap_err();
        assert!(matches!(err, Error::UnknownOutputTypes { .. }), "{err}");
        let y = g
            .node("FastGelu", &[&x])
            .domain(MS_DOMAIN)
            .output_types(&[ElemType::F16]);
        assert_eq!(y.output().unwrap().elem(), ElemType::F16);
    }

    #[test]
    fn graph_outputs_must_declare_their_values_type() {
        let (mut g, x, _) = graph();
        let err = g.output(&x, ElemType::F32, &[Dim::Fixed(2)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "graph output `x` is declared f32 but its value is f16"
        );
    }
}
