//! Float dtypes a checkpoint may hold, and conversions through f32.

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

/// Element type of a stored tensor. The release is bf16; loaders accept all three.
/// Serialized as its [`DType::name`] (the export manifest's `dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    #[serde(rename = "fp32")]
    F32,
    #[serde(rename = "fp16")]
    F16,
    #[serde(rename = "bf16")]
    BF16,
}

impl DType {
    /// Every dtype, in the order the command line lists them.
    pub const ALL: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Name as used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "fp32",
            DType::F16 => "fp16",
            DType::BF16 => "bf16",
        }
    }

    /// Parses `fp32|f32|float32`, `fp16|f16|float16`, `bf16|bfloat16`.
    pub fn parse(s: &str) -> Option<DType> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => Some(DType::F32),
            "fp16" | "f16" | "float16" => Some(DType::F16),
            "bf16" | "bfloat16" => Some(DType::BF16),
            _ => None,
        }
    }

    /// The `torch_dtype` string HF configs use.
    pub fn torch_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }

    pub(crate) fn from_st(d: safetensors::Dtype) -> Option<DType> {
        match d {
            safetensors::Dtype::F32 => Some(DType::F32),
            safetensors::Dtype::F16 => Some(DType::F16),
            safetensors::Dtype::BF16 => Some(DType::BF16),
            _ => None,
        }
    }

    pub(crate) fn to_st(self) -> safetensors::Dtype {
        match self {
            DType::F32 => safetensors::Dtype::F32,
            DType::F16 => safetensors::Dtype::F16,
            DType::BF16 => safetensors::Dtype::BF16,
        }
    }

    /// Decodes little-endian bytes of this dtype into f32 (exact for all three).
    pub fn bytes_to_f32(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        }
    }

    /// Encodes f32 values as little-endian bytes of this dtype (round to nearest even).
    pub fn f32_to_bytes(self, values: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() * self.size());
        match self {
            DType::F32 => values.iter().for_each(|v| out.extend(v.to_le_bytes())),
            DType::F16 => values
                .iter()
                .for_each(|v| out.extend(f16::from_f32(*v).to_le_bytes())),
            DType::BF16 => values
                .iter()
                .for_each(|v| out.extend(bf16::from_f32(*v).to_le_bytes())),
        }
        out
    }

    /// Converts raw bytes from `self` to `to` (copy-free when equal is the caller's job).
    pub fn convert(self, bytes: &[u8], to: DType) -> Vec<u8> {
        if self == to {
            return bytes.to_vec();
        }
        to.f32_to_bytes(&self.bytes_to_f32(bytes))
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::DType;

    /// The manifest stores the dtype by name: the JSON must stay `"fp32"` etc., or
    /// existing export folders stop loading and re-exports change their bytes.
    #[test]
    fn serializes_as_its_name() {
        for d in [DType::F32, DType::F16, DType::BF16] {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.name()));
            assert_eq!(serde_json::from_str::<DType>(&json).unwrap(), d);
        }
        assert!(serde_json::from_str::<DType>("\"fp8\"").is_err());
    }
}
