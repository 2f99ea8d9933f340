//! Constant nodes: typed tensors, scalars of a runtime-chosen dtype, 1-D int64 lists and
//! `ConstantOfShape`. Small constants are shared: asking twice for the same value
//! returns the first node's output instead of adding another node.

use crate::dtype::ElemType;
use crate::error::{Error, Result};
use crate::graph::GraphBuilder;
use crate::tensor::{Element, le_bytes, numel, raw_tensor, scalar_bytes};
use crate::value::Value;

/// Constants up to this many bytes are deduplicated (larger ones are rare and unique).
const CACHE_MAX_BYTES: usize = 1024;

impl GraphBuilder {
    /// A `Constant` node holding `bytes` (little-endian) of `dtype` and `shape`.
    pub fn constant_raw(
        &mut self,
        dtype: ElemType,
        shape: &[i64],
        bytes: Vec<u8>,
    ) -> Result<Value> {
        let key = (dtype, shape.to_vec(), bytes);
        if let Some(name) = self.const_cache.get(&key) {
            return Ok(name.clone());
        }
        let (dtype, shape, bytes) = key;
        let name = format!("{}/Constant", self.scope());
        let expected = numel(&shape)
            .and_then(|n| n.checked_mul(dtype.size() as u64))
            .ok_or_else(|| Error::InvalidShape {
                name: name.clone(),
                shape: shape.clone(),
            })?;
        if bytes.len() as u64 != expected {
            return Err(Error::InitializerSize {
                name,
                dtype: dtype.name(),
                shape,
                expected,
                got: bytes.len() as u64,
            });
        }
        let cacheable = bytes.len() <= CACHE_MAX_BYTES;
        let tensor = raw_tensor("", dtype, &shape, bytes.clone());
        let out = self.node("Constant", &[]).attr("value", tensor).output()?;
        if cacheable {
            self.const_cache.insert((dtype, shape, bytes), out.clone());
        }
        Ok(out)
    }

    /// A `Constant` tensor of typed `values` with `shape`.
    pub fn constant<T: Element>(&mut self, shape: &[i64], values: &[T]) -> Result<Value> {
        self.constant_raw(T::DTYPE, shape, le_bytes(values))
    }

    /// A 0-D `Constant` holding `value`.
    pub fn scalar<T: Element>(&mut self, value: T) -> Result<Value> {
        self.constant(&[], &[value])
    }

    /// A 0-D `Constant` of `dtype` holding `value` (for graphs whose float type is chosen
    /// at export time, e.g. an RMSNorm epsilon in bf16).
    pub fn scalar_as(&mut self, dtype: ElemType, value: f64) -> Result<Value> {
        self.constant_raw(dtype, &[], scalar_bytes(dtype, value))
    }

    /// A 0-D int64 `Constant`.
    pub fn const_i64(&mut self, value: i64) -> Result<Value> {
        self.scalar(value)
    }

    /// A 1-D int64 `Constant` (axes, shapes, slice bounds).
    pub fn const_i64s(&mut self, values: &[i64]) -> Result<Value> {
        self.constant(&[values.len() as i64], values)
    }

    /// `ConstantOfShape(shape)` filled with `value` converted to `dtype`.
    pub fn constant_of_shape(
        &mut self,
        shape: &Value,
        dtype: ElemType,
        value: f64,
    ) -> Result<Value> {
        let fill = raw_tensor("", dtype, &[1], scalar_bytes(dtype, value));
        self.node("ConstantOfShape", &[shape])
            .attr("value", fill)
            .output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_constants_are_shared() -> Result<()> {
        let mut g = GraphBuilder::new("t");
        let a = g.const_i64s(&[0, 1])?;
        g.push_scope("other");
        let b = g.const_i64s(&[0, 1])?;
        let c = g.const_i64s(&[1, 0])?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(c.name(), "other/Constant_output_0");
        assert_eq!(c.elem(), ElemType::I64);
        assert_eq!(g.nodes.len(), 2);
        let e = g.scalar_as(ElemType::F16, 1e-6)?;
        assert_ne!(e, g.scalar_as(ElemType::F32, 1e-6)?);
        Ok(())
    }
}
