//! Host <-> ONNX Runtime values in the export's float dtype. Host-side math (latent
//! splicing, greedy choice) is f32; conversions to and from fp16/bf16 are exact in
//! the f32 -> half direction's rounding and lossless in the other. The dtype is the
//! manifest's (`c3_core::DType`, also the checkpoint's).

use c3_core::DType;
use c3_onnx::ort::memory::AllocationDevice;
use c3_onnx::ort::memory::Allocator;
use c3_onnx::ort::value::{
    DynTensor, DynValue, Tensor, TensorElementType, TensorValueTypeMarker, Value,
};
use half::{bf16, f16};

use crate::error::Result;

/// Decoder input embeddings `[rows, seq, hidden]` in the export dtype, as ONNX Runtime
/// takes them ([`crate::DecodeState::forward`]). Opaque so that `ort`'s types stay out
/// of this crate's API: callers get them from [`crate::C3Runtime::prefill_embeds`],
/// `c3_runtime::bench::zero_embeds` or [`crate::C3Runtime::embeds_from_f32`].
#[derive(Debug)]
pub struct Embeds(pub(crate) DynValue);

/// A float tensor of `shape` from f32 `data`, converted to `ty`.
pub fn float_value(ty: DType, shape: &[usize], data: &[f32]) -> Result<DynValue> {
    let shape = shape.to_vec();
    Ok(match ty {
        DType::F32 => Tensor::from_array((shape, data.to_vec()))?.into_dyn(),
        DType::F16 => Tensor::from_array((
            shape,
            data.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>(),
        ))?
        .into_dyn(),
        DType::BF16 => Tensor::from_array((
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
pub fn alloc_tensor(alloc: &Allocator, ty: DType, shape: &[usize]) -> Result<DynTensor> {
    let elem = match ty {
        DType::F32 => TensorElementType::Float32,
        DType::F16 => TensorElementType::Float16,
        DType::BF16 => TensorElementType::Bfloat16,
    };
    Ok(DynTensor::new(alloc, elem, shape.to_vec())?)
}

/// A float tensor's shape and values as f32.
pub fn to_f32<T: TensorValueTypeMarker + ?Sized>(
    v: &Value<T>,
    ty: DType,
) -> Result<(Vec<usize>, Vec<f32>)> {
    Ok(match ty {
        DType::F32 => {
            let (s, d) = v.try_extract_tensor::<f32>()?;
            (dims(s), d.to_vec())
        }
        DType::F16 => {
            let (s, d) = v.try_extract_tensor::<f16>()?;
            (dims(s), d.iter().map(|x| x.to_f32()).collect())
        }
        DType::BF16 => {
            let (s, d) = v.try_extract_tensor::<bf16>()?;
            (dims(s), d.iter().map(|x| x.to_f32()).collect())
        }
    })
}

fn dims(s: &c3_onnx::ort::value::Shape) -> Vec<usize> {
    s.iter().map(|&d| d.max(0) as usize).collect()
}

/// Whether `t`'s data is in host memory (the host can read and copy it).
pub fn is_host(t: &DynTensor) -> bool {
    t.memory_info().allocation_device() == AllocationDevice::CPU
}
