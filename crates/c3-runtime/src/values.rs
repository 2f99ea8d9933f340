//! Host <-> ONNX Runtime values in the export's float dtype. Host-side math (latent
//! splicing, greedy choice) is f32; conversions to and from fp16/bf16 are exact in
//! the f32 -> half direction's rounding and lossless in the other.

use anyhow::{Result, bail};
use c3_onnx::ort::memory::Allocator;
use c3_onnx::ort::value::{DynTensor, DynValue, Tensor, TensorElementType};
use half::{bf16, f16};

/// The float dtype of an export's weights, latents, embeddings and KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
    BF16,
}

impl FloatType {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "fp32" => FloatType::F32,
            "fp16" => FloatType::F16,
            "bf16" => FloatType::BF16,
            other => bail!("unknown export dtype `{other}`"),
        })
    }
}

/// A float tensor of `shape` from f32 `data`, converted to `ty`.
pub fn float_value(ty: FloatType, shape: &[usize], data: &[f32]) -> Result<DynValue> {
    let shape = shape.to_vec();
    Ok(match ty {
        FloatType::F32 => Tensor::from_array((shape, data.to_vec()))?.into_dyn(),
        FloatType::F16 => Tensor::from_array((
            shape,
            data.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>(),
        ))?
        .into_dyn(),
        FloatType::BF16 => Tensor::from_array((
            shape,
            data.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>(),
        ))?
        .into_dyn(),
    })
}

/// An int64 tensor.
pub fn i64_value(shape: &[usize], data: Vec<i64>) -> Result<DynValue> {
    Ok(Tensor::from_array((shape.to_vec(), data))?.into_dyn())
}

/// A float tensor of `shape` from `alloc` (`ort` zero-fills host memory; device memory
/// is left as allocated: readers only touch positions written first).
pub fn alloc_tensor(alloc: &Allocator, ty: FloatType, shape: &[usize]) -> Result<DynTensor> {
    let elem = match ty {
        FloatType::F32 => TensorElementType::Float32,
        FloatType::F16 => TensorElementType::Float16,
        FloatType::BF16 => TensorElementType::Bfloat16,
    };
    Ok(DynTensor::new(alloc, elem, shape.to_vec())?)
}

/// A float tensor's shape and values as f32.
pub fn to_f32(v: &DynValue, ty: FloatType) -> Result<(Vec<usize>, Vec<f32>)> {
    Ok(match ty {
        FloatType::F32 => {
            let (s, d) = v.try_extract_tensor::<f32>()?;
            (dims(s), d.to_vec())
        }
        FloatType::F16 => {
            let (s, d) = v.try_extract_tensor::<f16>()?;
            (dims(s), d.iter().map(|x| x.to_f32()).collect())
        }
        FloatType::BF16 => {
            let (s, d) = v.try_extract_tensor::<bf16>()?;
            (dims(s), d.iter().map(|x| x.to_f32()).collect())
        }
    })
}

fn dims(s: &c3_onnx::ort::value::Shape) -> Vec<usize> {
    s.iter().map(|&d| d.max(0) as usize).collect()
}
