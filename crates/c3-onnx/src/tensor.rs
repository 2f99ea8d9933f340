//! Tensor payloads: typed element encoding, in-memory bytes, and streamed sources
//! whose bytes are produced only when the model is written.

use std::fmt;
use std::io::Write;

use crate::dtype::ElemType;
use crate::proto::TensorProto;

/// Produces an initializer's bytes at write time.
///
/// The writer calls [`TensorSource::write_to`] once per write, straight into the external
/// data file (or into a buffer for a small inline tensor), so a multi-GB checkpoint read
/// from a memory map is never held in RAM a second time. It must write exactly
/// `numel * dtype.size()` bytes, little-endian, row-major; the writer checks the count.
///
/// Any `Fn(&mut dyn Write) -> io::Result<()> + Send + Sync` closure is a source.
pub trait TensorSource: Send + Sync {
    /// Writes the tensor's bytes to `out`.
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

impl<F> TensorSource for F
where
    F: Fn(&mut dyn Write) -> std::io::Result<()> + Send + Sync,
{
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self(out)
    }
}

/// An initializer's payload.
pub enum TensorData {
    /// Bytes already in memory (little-endian, row-major).
    Bytes(Vec<u8>),
    /// Bytes produced at write time.
    Stream(Box<dyn TensorSource>),
}

impl TensorData {
    /// Wraps a source (e.g. a closure converting a memory-mapped tensor's dtype).
    pub fn stream(source: impl TensorSource + 'static) -> Self {
        Self::Stream(Box::new(source))
    }

    /// Writes the payload to `out`.
    pub(crate) fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Self::Bytes(b) => out.write_all(b),
            Self::Stream(s) => s.write_to(out),
        }
    }
}

impl From<Vec<u8>> for TensorData {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes)
    }
}

impl fmt::Debug for TensorData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A Rust element type with a fixed ONNX dtype and little-endian encoding.
pub trait Element: Copy {
    /// The matching ONNX dtype.
    const DTYPE: ElemType;
    /// Appends the little-endian bytes of `self`.
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl Element for $t {
            const DTYPE: ElemType = ElemType::$d;
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

element! {
    f32 => F32, f64 => F64, half::f16 => F16, half::bf16 => BF16,
    i64 => I64, i32 => I32, i16 => I16, i8 => I8,
    u64 => U64, u32 => U32, u16 => U16, u8 => U8,
}

impl Element for bool {
    const DTYPE: ElemType = ElemType::Bool;
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// Little-endian bytes of `values`.
pub fn le_bytes<T: Element>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::DTYPE.size());
    for &v in values {
        v.put_le(&mut out);
    }
    out
}

/// Bytes of one scalar `value` converted to `dtype` (floats round to nearest, integers
/// truncate toward zero, bool is `value != 0`).
pub fn scalar_bytes(dtype: ElemType, value: f64) -> Vec<u8> {
    // `as` saturates on overflow, which is the least surprising choice for constants.
    match dtype {
        ElemType::F32 => le_bytes(&[value as f32]),
        ElemType::F64 => le_bytes(&[value]),
        ElemType::F16 => le_bytes(&[half::f16::from_f64(value)]),
        ElemType::BF16 => le_bytes(&[half::bf16::from_f64(value)]),
        ElemType::I64 => le_bytes(&[value as i64]),
        ElemType::I32 => le_bytes(&[value as i32]),
        ElemType::I16 => le_bytes(&[value as i16]),
        ElemType::I8 => le_bytes(&[value as i8]),
        ElemType::U64 => le_bytes(&[value as u64]),
        ElemType::U32 => le_bytes(&[value as u32]),
        ElemType::U16 => le_bytes(&[value as u16]),
        ElemType::U8 => le_bytes(&[value as u8]),
        ElemType::Bool => le_bytes(&[value != 0.0]),
    }
}

/// Number of elements of `shape`, or `None` if a dimension is negative or it overflows.
pub(crate) fn numel(shape: &[i64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

/// An inline `TensorProto` holding `raw` bytes.
pub(crate) fn raw_tensor(name: &str, dtype: ElemType, shape: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.to_owned()),
        data_type: Some(dtype.onnx() as i32),
        dims: shape.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_little_endian() {
        assert_eq!(le_bytes(&[1.0f32]), vec![0, 0, 0x80, 0x3f]);
        assert_eq!(le_bytes(&[-2i64]), (-2i64).to_le_bytes().to_vec());
        assert_eq!(le_bytes(&[true, false]), vec![1, 0]);
        assert_eq!(scalar_bytes(ElemType::BF16, 1.0), vec![0x80, 0x3f]);
        assert_eq!(scalar_bytes(ElemType::F16, 1.0), vec![0x00, 0x3c]);
    }

    #[test]
    fn numel_rejects_negative_dims() {
        assert_eq!(numel(&[]), Some(1));
        assert_eq!(numel(&[2, 3]), Some(6));
        assert_eq!(numel(&[2, -1]), None);
    }
}
