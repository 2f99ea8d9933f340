//! Checkpoint health: every tensor scanned for NaN, ±Inf and values that become ±Inf
//! when converted to an export dtype (fp32 -> fp16 beyond ±65504). A checkpoint with
//! such weights exports without complaint and fails much later, as NaN logits far
//! from the cause (the C3 reference's bf16 release, its GitHub issue #4), so the
//! exporter and `c3 inspect --check` refuse it up front, naming the tensors.

use std::fmt;

use half::{bf16, f16};
use serde::Serialize;

use super::{Checkpoint, DType, TensorView};
use crate::config::ENCODER_DIR;

/// Tensors named in the one-line summary before "and N more".
const NAMED_IN_SUMMARY: usize = 3;

/// The smallest finite f32 magnitude that rounds to infinity in `to` (round to
/// nearest even): fp16's max is 65504, and 65520 is the midpoint to the next step.
fn overflow_limit(from: DType, to: DType) -> f32 {
    match (from, to) {
        (DType::F32 | DType::BF16, DType::F16) => 65520.0,
        // bf16 max is 0x7F7F; halfway to the next step (0x7F7F8000 in f32) rounds up.
        (DType::F32, DType::BF16) => f32::from_bits(0x7F7F_8000),
        _ => f32::INFINITY,
    }
}

/// What the scan found in one tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorHealth {
    /// Checkpoint key, prefixed with `llm1/` for the encoder's tensors.
    pub name: String,
    pub nan: u64,
    /// +Inf and -Inf.
    pub inf: u64,
    /// Finite values that become ±Inf in the export dtype.
    pub overflow: u64,
}

impl TensorHealth {
    fn is_bad(&self) -> bool {
        self.nan + self.inf + self.overflow > 0
    }
}

/// The result of [`scan`]: which tensors hold values an export cannot carry.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// Export dtype overflow was checked against (`fp32`: non-finite values only).
    pub export_dtype: String,
    pub tensors: usize,
    pub values: u64,
    /// Offending tensors, in checkpoint order (decoder folder first, then `llm1/`).
    pub bad: Vec<TensorHealth>,
}

impl HealthReport {
    pub fn is_healthy(&self) -> bool {
        self.bad.is_empty()
    }
}

impl fmt::Display for HealthReport {
    /// One line: how many tensors, the first few by name with their counts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bad.is_empty() {
            return write!(
                f,
                "{} tensors, {} values: all finite and within {}'s range",
                self.tensors, self.values, self.export_dtype
            );
        }
        write!(
            f,
            "{} of {} tensors hold values the {} export cannot carry: ",
            self.bad.len(),
            self.tensors,
            self.export_dtype
        )?;
        for (i, t) in self.bad.iter().take(NAMED_IN_SUMMARY).enumerate() {
            let mut what = Vec::new();
            if t.nan > 0 {
                what.push(format!("{} NaN", t.nan));
            }
            if t.inf > 0 {
                what.push(format!("{} Inf", t.inf));
            }
            if t.overflow > 0 {
                what.push(format!(
                    "{} beyond {}'s range",
                    t.overflow, self.export_dtype
                ));
            }
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}`{}` ({})", t.name, what.join(", "))?;
        }
        if self.bad.len() > NAMED_IN_SUMMARY {
            write!(f, " and {} more", self.bad.len() - NAMED_IN_SUMMARY)?;
        }
        Ok(())
    }
}

/// Scans every tensor of `ck` (both folders). `export_dtype` adds the overflow check
/// for that conversion; `on_tensor(done, total)` is called after each tensor.
pub fn scan(
    ck: &Checkpoint,
    export_dtype: DType,
    on_tensor: &mut dyn FnMut(usize, usize),
) -> HealthReport {
    let stores = [("", &ck.root), (ENCODER_DIR, &ck.llm1)];
    let total: usize = stores.iter().map(|(_, s)| s.names().len()).sum();
    let mut report = HealthReport {
        export_dtype: export_dtype.name().into(),
        tensors: 0,
        values: 0,
        bad: Vec::new(),
    };
    for (prefix, store) in stores {
        for name in store.names() {
            // Names come from the store's own index, so the lookup cannot miss.
            let Ok(view) = store.get(name) else { continue };
            let mut h = scan_tensor(&view, export_dtype);
            if !prefix.is_empty() {
                h.name = format!("{prefix}/{}", h.name);
            }
            report.tensors += 1;
            report.values += view.numel() as u64;
            if h.is_bad() {
                report.bad.push(h);
            }
            on_tensor(report.tensors, total);
        }
    }
    report
}

/// Counts the NaN, ±Inf and overflowing values of one tensor.
pub fn scan_tensor(view: &TensorView<'_>, export_dtype: DType) -> TensorHealth {
    let limit = overflow_limit(view.dtype, export_dtype);
    let mut h = TensorHealth {
        name: view.name.to_string(),
        nan: 0,
        inf: 0,
        overflow: 0,
    };
    let mut count = |x: f32| {
        if x.is_nan() {
            h.nan += 1;
        } else if x.is_infinite() {
            h.inf += 1;
        } else if x.abs() >= limit {
            h.overflow += 1;
        }
    };
    match view.dtype {
        DType::F32 => view
            .data
            .chunks_exact(4)
            .for_each(|c| count(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        DType::F16 => view
            .data
            .chunks_exact(2)
            .for_each(|c| count(f16::from_le_bytes([c[0], c[1]]).to_f32())),
        DType::BF16 => view
            .data
            .chunks_exact(2)
            .for_each(|c| count(bf16::from_le_bytes([c[0], c[1]]).to_f32())),
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn view<'a>(dtype: DType, data: &'a [u8], shape: &'a [usize]) -> TensorView<'a> {
        TensorView {
            name: "w",
            dtype,
            shape,
            data,
            path: Path::new("model.safetensors"),
        }
    }

    #[test]
    fn overflow_limits_are_where_half_rounds_to_infinity() {
        let below = |x: f32| f32::from_bits(x.to_bits() - 1);
        let l = overflow_limit(DType::F32, DType::F16);
        assert!(f16::from_f32(l).is_infinite() && !f16::from_f32(below(l)).is_infinite());
        let l = overflow_limit(DType::F32, DType::BF16);
        assert!(bf16::from_f32(l).is_infinite() && !bf16::from_f32(below(l)).is_infinite());
        assert_eq!(overflow_limit(DType::F16, DType::BF16), f32::INFINITY);
    }

    #[test]
    fn counts_nan_inf_and_fp16_overflow() {
        let vals = [1.0f32, f32::NAN, f32::INFINITY, -70000.0, 65504.0, 65519.0];
        let data = DType::F32.f32_to_bytes(&vals);
        let h = scan_tensor(&view(DType::F32, &data, &[6]), DType::F16);
        assert_eq!((h.nan, h.inf, h.overflow), (1, 1, 1));
        let h = scan_tensor(&view(DType::F32, &data, &[6]), DType::F32);
        assert_eq!(
            (h.nan, h.inf, h.overflow),
            (1, 1, 0),
            "fp32 export: no overflow"
        );
        let data = DType::BF16.f32_to_bytes(&[f32::NAN, 1e30]);
        let h = scan_tensor(&view(DType::BF16, &data, &[2]), DType::F16);
        assert_eq!((h.nan, h.inf, h.overflow), (1, 0, 1));
    }

    #[test]
    fn summary_names_a_few_tensors_then_counts_the_rest() {
        let bad = (0..5)
            .map(|i| TensorHealth {
                name: format!("t{i}"),
                nan: 1,
                inf: 0,
                overflow: 2,
            })
            .collect();
        let r = HealthReport {
            export_dtype: "fp16".into(),
            tensors: 9,
            values: 90,
            bad,
        };
        let s = r.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert!(s.starts_with("5 of 9 tensors"), "{s}");
        assert!(s.contains("`t0` (1 NaN, 2 beyond fp16's range)"), "{s}");
        assert!(s.contains("`t2`") && !s.contains("`t3`"), "{s}");
        assert!(s.ends_with(" and 2 more"), "{s}");
    }
}
