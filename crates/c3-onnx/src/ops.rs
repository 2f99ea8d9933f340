//! Thin helpers for the standard ONNX ops an LLM export needs, on top of
//! [`GraphBuilder::node`]. Each adds one node in the current scope and returns its typed
//! output (input types are checked by [`crate::types`]). Ops with attributes or optional
//! inputs beyond these helpers: use `node` directly.

use crate::dtype::ElemType;
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::value::Value;

/// One helper per single-input, single-output op without attributes.
macro_rules! unary_ops {
    ($($f:ident => $op:literal),* $(,)?) => {
        impl GraphBuilder {$(
            #[doc = concat!("`", $op, "(x)`.")]
            pub fn $f(&mut self, x: &Value) -> Result<Value> {
                self.node($op, &[x]).output()
            }
        )*}
    };
}

/// One helper per two-input, single-output op without attributes.
macro_rules! binary_ops {
    ($($f:ident => $op:literal),* $(,)?) => {
        impl GraphBuilder {$(
            #[doc = concat!("`", $op, "(a, b)` (numpy broadcasting).")]
            pub fn $f(&mut self, a: &Value, b: &Value) -> Result<Value> {
                self.node($op, &[a, b]).output()
            }
        )*}
    };
}

unary_ops! {
    neg => "Neg", sqrt => "Sqrt", reciprocal => "Reciprocal", sigmoid => "Sigmoid",
    sin => "Sin", cos => "Cos", exp => "Exp", log => "Log", tanh => "Tanh", relu => "Relu",
    erf => "Erf", abs => "Abs", not => "Not", identity => "Identity", shape_of => "Shape",
}

binary_ops! {
    matmul => "MatMul", add => "Add", sub => "Sub", mul => "Mul", div => "Div", pow => "Pow",
    equal => "Equal", less => "Less", greater => "Greater", max => "Max", min => "Min",
    and => "And", or => "Or", reshape => "Reshape", expand => "Expand",
}

impl GraphBuilder {
    /// `Gemm(a, b[, c])` with alpha = beta = 1: `a @ b^T + c` when `trans_b` (the layout
    /// of a torch `Linear` weight).
    pub fn gemm(
        &mut self,
        a: &Value,
        b: &Value,
        c: Option<&Value>,
        trans_b: bool,
    ) -> Result<Value> {
        let inputs: Vec<&Value> = [a, b].into_iter().chain(c).collect();
        self.node("Gemm", &inputs).attr("transB", trans_b).output()
    }

    /// `Softmax(x)` along `axis`.
    pub fn softmax(&mut self, x: &Value, axis: i64) -> Result<Value> {
        self.node("Softmax", &[x]).attr("axis", axis).output()
    }

    /// `Cast(x)` to `to`.
    pub fn cast(&mut self, x: &Value, to: ElemType) -> Result<Value> {
        self.node("Cast", &[x])
            .attr("to", to.onnx() as i64)
            .output()
    }

    /// `Gather(data, indices)` along `axis` (embedding lookup with axis 0).
    pub fn gather(&mut self, data: &Value, indices: &Value, axis: i64) -> Result<Value> {
        self.node("Gather", &[data, indices])
            .attr("axis", axis)
            .output()
    }

    /// `Transpose(x)` with permutation `perm`.
    pub fn transpose(&mut self, x: &Value, perm: &[i64]) -> Result<Value> {
        self.node("Transpose", &[x]).attr("perm", perm).output()
    }

    /// `Concat(inputs)` along `axis`.
    pub fn concat(&mut self, inputs: &[&Value], axis: i64) -> Result<Value> {
        self.node("Concat", inputs).attr("axis", axis).output()
    }

    /// `Slice(data, starts, ends[, axes[, steps]])`; bounds are 1-D int64 values
    /// (see [`GraphBuilder::const_i64s`]) because they are often computed from shapes.
    pub fn slice(
        &mut self,
        data: &Value,
        starts: &Value,
        ends: &Value,
        axes: Option<&Value>,
        steps: Option<&Value>,
    ) -> Result<Value> {
        // Omitted optional inputs in the middle are spelled "" in ONNX; trailing ones
        // are left out.
        let mut inputs = vec![Some(data), Some(starts), Some(ends), axes, steps];
        while inputs.last() == Some(&None) {
            inputs.pop();
        }
        self.node_with_optional("Slice", &inputs).output()
    }

    /// `Unsqueeze(x, axes)` with constant `axes`.
    pub fn unsqueeze(&mut self, x: &Value, axes: &[i64]) -> Result<Value> {
        let axes = self.const_i64s(axes)?;
        self.node("Unsqueeze", &[x, &axes]).output()
    }

    /// `Squeeze(x, axes)` with constant `axes`.
    pub fn squeeze(&mut self, x: &Value, axes: &[i64]) -> Result<Value> {
        let axes = self.const_i64s(axes)?;
        self.node("Squeeze", &[x, &axes]).output()
    }

    /// `ReduceMean(x)` over constant `axes`; axes are an input from opset 18 on and an
    /// attribute before, so this follows the graph's opset.
    pub fn reduce_mean(&mut self, x: &Value, axes: &[i64], keepdims: bool) -> Result<Value> {
        if self.opset() >= 18 {
            let axes = self.const_i64s(axes)?;
            self.node("ReduceMean", &[x, &axes])
                .attr("keepdims", keepdims)
                .output()
        } else {
            self.node("ReduceMean", &[x])
                .attr("axes", axes)
                .attr("keepdims", keepdims)
                .output()
        }
    }

    /// `Where(cond, x, y)`.
    pub fn where_(&mut self, cond: &Value, x: &Value, y: &Value) -> Result<Value> {
        self.node("Where", &[cond, x, y]).output()
    }

    /// `Range(start, limit, delta)` (0-D inputs of one type).
    pub fn range(&mut self, start: &Value, limit: &Value, delta: &Value) -> Result<Value> {
        self.node("Range", &[start, limit, delta]).output()
    }

    /// `CumSum(x)` along constant `axis` (inclusive, forward).
    pub fn cumsum(&mut self, x: &Value, axis: i64) -> Result<Value> {
        let axis = self.const_i64(axis)?;
        self.node("CumSum", &[x, &axis]).output()
    }

    /// `Trilu(x[, k])`: upper (`upper`) or lower triangle, `k` a 0-D int64 value.
    pub fn trilu(&mut self, x: &Value, k: Option<&Value>, upper: bool) -> Result<Value> {
        let inputs: Vec<&Value> = [x].into_iter().chain(k).collect();
        self.node("Trilu", &inputs).attr("upper", upper).output()
    }
}

#[cfg(test)]
mod tests {
    use crate::dtype::{Dim, ElemType};
    use crate::error::Result;
    use crate::graph::GraphBuilder;

    #[test]
    fn reduce_mean_follows_opset() -> Result<()> {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", ElemType::F32, &[Dim::Fixed(2), Dim::Fixed(3)])?;
        g.reduce_mean(&x, &[-1], true)?;
        let n = g.nodes.last().expect("node added");
        assert_eq!(n.input.len(), 2);
        g.set_opset("", 17);
        g.reduce_mean(&x, &[-1], true)?;
        let n = g.nodes.last().expect("node added");
        assert_eq!(n.input.len(), 1);
        assert!(
            n.attribute
                .iter()
                .any(|a| a.name.as_deref() == Some("axes"))
        );
        Ok(())
    }

    #[test]
    fn slice_trims_trailing_optional_inputs() -> Result<()> {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", ElemType::F32, &[Dim::Fixed(4)])?;
        let s = g.const_i64s(&[0])?;
        let e = g.const_i64s(&[2])?;
        g.slice(&x, &s, &e, None, None)?;
        assert_eq!(g.nodes.last().map(|n| n.input.len()), Some(3));
        let one = g.const_i64s(&[1])?;
        g.slice(&x, &s, &e, None, Some(&one))?;
        assert_eq!(g.nodes.last().map(|n| n.input[3].as_str()), Some(""));
        Ok(())
    }
}
