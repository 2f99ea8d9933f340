//! Node attributes and their protobuf encoding.

use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, TensorProto};

/// A node attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// `INT`.
    Int(i64),
    /// `FLOAT`.
    Float(f32),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOATS`.
    Floats(Vec<f32>),
    /// `STRING` (UTF-8).
    String(String),
    /// `TENSOR` (e.g. `Constant.value`, `ConstantOfShape.value`).
    Tensor(Box<TensorProto>),
}

impl Attr {
    /// The `AttributeProto` named `name` holding this value.
    pub(crate) fn to_proto(&self, name: &str) -> AttributeProto {
        let mut a = AttributeProto {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let ty = match self {
            Self::Int(i) => {
                a.i = Some(*i);
                AttributeType::Int
            }
            Self::Float(f) => {
                a.f = Some(*f);
                AttributeType::Float
            }
            Self::Ints(v) => {
                a.ints = v.clone();
                AttributeType::Ints
            }
            Self::Floats(v) => {
                a.floats = v.clone();
                AttributeType::Floats
            }
            Self::String(s) => {
                a.s = Some(s.as_bytes().to_vec());
                AttributeType::String
            }
            Self::Tensor(t) => {
                a.t = Some(t.as_ref().clone());
                AttributeType::Tensor
            }
        };
        a.r#type = Some(ty as i32);
        a
    }
}

impl From<i64> for Attr {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for Attr {
    /// ONNX has no boolean attributes: flags such as `keepdims` are 0/1 ints.
    fn from(v: bool) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<f32> for Attr {
    fn from(v: f32) -> Self {
        Self::Float(v)
    }
}

impl From<Vec<i64>> for Attr {
    fn from(v: Vec<i64>) -> Self {
        Self::Ints(v)
    }
}

impl From<&[i64]> for Attr {
    fn from(v: &[i64]) -> Self {
        Self::Ints(v.to_vec())
    }
}

impl From<Vec<f32>> for Attr {
    fn from(v: Vec<f32>) -> Self {
        Self::Floats(v)
    }
}

impl From<&[f32]> for Attr {
    fn from(v: &[f32]) -> Self {
        Self::Floats(v.to_vec())
    }
}

impl From<&str> for Attr {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

impl From<String> for Attr {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<TensorProto> for Attr {
    fn from(v: TensorProto) -> Self {
        Self::Tensor(Box::new(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_type_and_value() {
        let a = Attr::from(vec![1i64, 0]).to_proto("perm");
        assert_eq!(a.name.as_deref(), Some("perm"));
        assert_eq!(a.r#type, Some(AttributeType::Ints as i32));
        assert_eq!(a.ints, vec![1, 0]);
        let s = Attr::from("NOTSET").to_proto("auto_pad");
        assert_eq!(s.s.as_deref(), Some(&b"NOTSET"[..]));
        assert_eq!(Attr::from(true), Attr::Int(1));
    }
}
