//! Element types and (symbolic) dimensions, mapped to their ONNX protobuf encodings.
//!
//! [`ElemType`] is every element type a graph value may have (ints and bools too);
//! the float precision an export is *chosen* in is [`c3_core::DType`], converted here.

use std::fmt;

use crate::proto::tensor_proto::DataType;
use crate::proto::{TensorShapeProto, TypeProto, tensor_shape_proto, type_proto};

/// Tensor element type (ONNX `TensorProto.DataType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (binary32 truncated to 16 bits).
    BF16,
    /// IEEE 754 binary64.
    F64,
    /// Signed 64-bit integer (ONNX's index and shape type).
    I64,
    /// Signed 32-bit integer.
    I32,
    /// Signed 16-bit integer.
    I16,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 64-bit integer.
    U64,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 8-bit integer.
    U8,
    /// Boolean, one byte per element.
    Bool,
}

impl ElemType {
    /// All supported dtypes, for lookups and tests.
    pub const ALL: [ElemType; 13] = [
        Self::F32,
        Self::F16,
        Self::BF16,
        Self::F64,
        Self::I64,
        Self::I32,
        Self::I16,
        Self::I8,
        Self::U64,
        Self::U32,
        Self::U16,
        Self::U8,
        Self::Bool,
    ];

    /// The ONNX `TensorProto.DataType` of this dtype.
    pub fn onnx(self) -> DataType {
        match self {
            Self::F32 => DataType::Float,
            Self::F16 => DataType::Float16,
            Self::BF16 => DataType::Bfloat16,
            Self::F64 => DataType::Double,
            Self::I64 => DataType::Int64,
            Self::I32 => DataType::Int32,
            Self::I16 => DataType::Int16,
            Self::I8 => DataType::Int8,
            Self::U64 => DataType::Uint64,
            Self::U32 => DataType::Uint32,
            Self::U16 => DataType::Uint16,
            Self::U8 => DataType::Uint8,
            Self::Bool => DataType::Bool,
        }
    }

    /// The dtype of an ONNX `data_type`/`elem_type` code, if it is one we support.
    pub fn from_onnx(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.onnx() as i32 == code)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 | Self::U64 => 8,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F16 | Self::BF16 | Self::I16 | Self::U16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::BF16 | Self::F64)
    }

    /// Short lower-case name (`"f32"`, `"bf16"`, ...), as in safetensors headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::F64 => "f64",
            Self::I64 => "i64",
            Self::I32 => "i32",
            Self::I16 => "i16",
            Self::I8 => "i8",
            Self::U64 => "u64",
            Self::U32 => "u32",
            Self::U16 => "u16",
            Self::U8 => "u8",
            Self::Bool => "bool",
        }
    }
}

/// The export precision as a graph element type.
impl From<c3_core::DType> for ElemType {
    fn from(d: c3_core::DType) -> Self {
        match d {
            c3_core::DType::F32 => Self::F32,
            c3_core::DType::F16 => Self::F16,
            c3_core::DType::BF16 => Self::BF16,
        }
    }
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One dimension of a graph input/output shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known size.
    Fixed(i64),
    /// A named symbolic size (`"batch"`, `"seq"`): equal names mean equal sizes.
    Sym(String),
    /// Unknown, unnamed size.
    Unknown,
}

impl Dim {
    /// A symbolic dimension named `name`.
    pub fn sym(name: impl Into<String>) -> Self {
        Self::Sym(name.into())
    }

    fn to_proto(&self) -> tensor_shape_proto::Dimension {
        use tensor_shape_proto::dimension::Value;
        let value = match self {
            Self::Fixed(n) => Some(Value::DimValue(*n)),
            Self::Sym(s) => Some(Value::DimParam(s.clone())),
            Self::Unknown => None,
        };
        tensor_shape_proto::Dimension {
            value,
            denotation: None,
        }
    }
}

impl From<i64> for Dim {
    fn from(n: i64) -> Self {
        Self::Fixed(n)
    }
}

impl From<&str> for Dim {
    fn from(s: &str) -> Self {
        Self::Sym(s.to_owned())
    }
}

/// The `TypeProto` of a tensor with this dtype and shape (`None`: rank unknown).
pub(crate) fn tensor_type(dtype: ElemType, shape: Option<&[Dim]>) -> TypeProto {
    let shape = shape.map(|dims| TensorShapeProto {
        dim: dims.iter().map(Dim::to_proto).collect(),
    });
    TypeProto {
        denotation: None,
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(dtype.onnx() as i32),
            shape,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_codes_round_trip() {
        for d in ElemType::ALL {
            assert_eq!(ElemType::from_onnx(d.onnx() as i32), Some(d));
        }
        assert_eq!(ElemType::F32.onnx() as i32, 1);
        assert_eq!(ElemType::BF16.onnx() as i32, 16);
        assert_eq!(ElemType::from_onnx(8), None, "strings are not supported");
    }
}
