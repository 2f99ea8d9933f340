//! Weight-only quantization of the decoder's linear layers (and by default its LM
//! head) for `--target ort`: ONNX Runtime's `MatMulNBits` (com.microsoft) with 4- or
//! 8-bit symmetric blocks along the input dimension. The torch `[out, in]` layout is
//! already MatMulNBits' `[N, K]` (the tied embedding `[vocab, hidden]` too), so each
//! block quantizes straight from the memory map.
//!
//! `accuracy_level` 4 (int8 compute) is the default: without it ONNX Runtime's CPU
//! kernels dequantize every block to fp32 and run an fp32 GEMM, which made int8
//! decode 6.6x *slower* than fp32 (issue 15's measurement); with it the activations
//! are quantized per block and the dot products are integer.
//!
//! Per block: scale = max|w| / qmax, q = clamp(round(w / scale) + zp, 0, 2^bits - 1)
//! with the implicit zero point zp = 2^(bits-1) (8 or 128), so w ≈ (q - zp) * scale.
//! Int4 packs two values per byte, the even index in the low nibble.
//!
//! Scales are stored in the export dtype: MatMulNBits types them like its input
//! activations (`T1`), so an fp16 export (what CUDA's MatMulNBits kernels compute in)
//! needs fp16 scales. The codes are always chosen with the f32 scale, so an fp16 and
//! an fp32 export of one checkpoint hold the same codes and differ only by each
//! scale's rounding: at most 2^-11 of it for normal fp16 values, more for the tiny
//! scales (below 6.1e-5: blocks whose largest |w| is under ~4e-4 for int4, ~8e-3
//! for int8) that fp16 holds as subnormals.

use std::io::Write;

use crate::error::Result;
use c3_core::TensorView;
use c3_onnx::{ElemType, GraphBuilder, MS_DOMAIN, TensorData, Value};

use crate::weights::{Folder, Weights, read_f32};

/// How to quantize: bits, block along K, MatMulNBits `accuracy_level`, and whether
/// the LM head is quantized too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantSpec {
    pub bits: u32,
    pub block: usize,
    pub accuracy_level: i64,
    pub lm_head: bool,
}

/// Scales of one row `w` (length K): one per block, f32.
fn row_scales(w: &[f32], bits: u32, block: usize) -> Vec<f32> {
    let qmax = ((1u32 << (bits - 1)) - 1) as f32;
    w.chunks(block)
        .map(|b| b.iter().fold(0f32, |m, v| m.max(v.abs())) / qmax)
        .collect()
}

/// Packed codes of one row: `k_blocks * block * bits / 8` bytes (K padded with zeros).
fn row_codes(w: &[f32], bits: u32, block: usize, out: &mut Vec<u8>) {
    let zp = (1i32 << (bits - 1)) as f32;
    let hi = ((1u32 << bits) - 1) as f32;
    for (b, scale) in w.chunks(block).zip(row_scales(w, bits, block)) {
        let code = |i: usize| -> u8 {
            let v = b.get(i).copied().unwrap_or(0.0);
            let q = if scale > 0.0 {
                (v / scale).round() + zp
            } else {
                zp
            };
            q.clamp(0.0, hi) as u8
        };
        if bits == 8 {
            out.extend((0..block).map(code));
        } else {
            out.extend((0..block / 2).map(|i| code(2 * i) | (code(2 * i + 1) << 4)));
        }
    }
}

/// Rows of a 2-D tensor as f32, one at a time.
fn for_rows(
    view: &TensorView<'_>,
    mut f: impl FnMut(&[f32]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let k = view.shape[1];
    let mut row = vec![0f32; k];
    for r in 0..view.shape[0] {
        for (j, v) in row.iter_mut().enumerate() {
            *v = read_f32(view.dtype, view.data, r * k + j);
        }
        f(&row)?;
    }
    Ok(())
}

/// `x @ W^T` for the `[out, in]` weight `key`, as a MatMulNBits node.
pub fn linear(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    key: &str,
    x: &Value,
    spec: QuantSpec,
) -> Result<Value> {
    let scope = key.trim_end_matches(".weight").to_owned();
    stacked_linear(g, w, folder, &[key], &scope, x, spec)
}

/// `x @ [W_1; W_2; ...]^T` for `[out_i, in]` weights sharing `in`, as one
/// MatMulNBits node at `scope`: the weights' rows stacked (each key's codes and
/// scales are their own initializers, concatenated in the graph, which ONNX Runtime
/// folds into one constant when it loads the model).
pub fn stacked_linear(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    keys: &[&str],
    scope: &str,
    x: &Value,
    spec: QuantSpec,
) -> Result<Value> {
    let (mut codes, mut scales, mut n, mut k) = (Vec::new(), Vec::new(), 0, 0);
    for key in keys {
        let (c, s, rows, cols) = quantized(g, w, folder, key, spec)?;
        codes.push(c);
        scales.push(s);
        n += rows;
        k = cols;
    }
    g.scoped(scope, |g| -> Result<Value> {
        let (b, s) = match keys.len() {
            1 => (codes.remove(0), scales.remove(0)),
            _ => {
                let c: Vec<&Value> = codes.iter().collect();
                let sc: Vec<&Value> = scales.iter().collect();
                (g.concat(&c, 0)?, g.concat(&sc, 0)?)
            }
        };
        Ok(g.node("MatMulNBits", &[x, &b, &s])
            .domain(MS_DOMAIN)
            .attr("K", k as i64)
            .attr("N", n as i64)
            .attr("bits", spec.bits as i64)
            .attr("block_size", spec.block as i64)
            .attr("accuracy_level", spec.accuracy_level)
            .output()?)
    })
}

/// The codes `[N, k_blocks, blob]` and scales `[N * k_blocks]` initializers of the
/// `[N, K]` weight `key`, with N and K.
fn quantized(
    g: &mut GraphBuilder,
    w: &Weights,
    folder: Folder,
    key: &str,
    spec: QuantSpec,
) -> Result<(Value, Value, usize, usize)> {
    let (bits, block, dt) = (spec.bits, spec.block, w.dtype);
    let view = w.view(folder, key)?;
    let (n, k) = (view.shape[0], view.shape[1]);
    let k_blocks = k.div_ceil(block);
    let blob = block * bits as usize / 8;
    let codes = w.stream(folder, key, move |view, out: &mut dyn Write| {
        let mut buf = Vec::with_capacity(k_blocks * blob);
        for_rows(view, |row| {
            buf.clear();
            row_codes(row, bits, block, &mut buf);
            out.write_all(&buf)
        })
    });
    let scales = w.stream(folder, key, move |view, out: &mut dyn Write| {
        for_rows(view, |row| {
            out.write_all(&dt.f32_to_bytes(&row_scales(row, bits, block)))
        })
    });
    let shape_b = [n as i64, k_blocks as i64, blob as i64];
    let b = g.initializer(
        &format!("{key}.q{bits}"),
        ElemType::U8,
        &shape_b,
        TensorData::stream(codes),
    )?;
    let s = g.initializer(
        &format!("{key}.scales"),
        w.elem(),
        &[(n * k_blocks) as i64],
        TensorData::stream(scales),
    )?;
    Ok((b, s, n, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 32;
    use c3_core::DType;

    #[test]
    fn int4_codes_dequantize_within_half_a_step() {
        let w: Vec<f32> = (0..40).map(|i| (i as f32 - 17.0) * 0.05).collect();
        let scales = row_scales(&w, 4, BLOCK);
        let mut codes = Vec::new();
        row_codes(&w, 4, BLOCK, &mut codes);
        assert_eq!(codes.len(), 2 * BLOCK / 2, "two blocks, K padded to 64");
        for (i, &v) in w.iter().enumerate() {
            let byte = codes[i / 2];
            let q = if i % 2 == 0 { byte & 15 } else { byte >> 4 };
            let s = scales[i / BLOCK];
            let back = (q as f32 - 8.0) * s;
            assert!(
                (back - v).abs() <= s / 2.0 + 1e-6,
                "w[{i}] = {v}, dequantized {back}"
            );
        }
    }

    #[test]
    fn fp16_scales_keep_the_codes_within_half_a_step_and_a_rounding() {
        // Weights whose f32 scale is not an f16 value.
        let w: Vec<f32> = (0..32).map(|i| (i as f32 * 0.731).sin() * 0.0123).collect();
        let s32 = row_scales(&w, 4, BLOCK)[0];
        let stored = DType::F16.f32_to_bytes(&[s32]);
        let s16 = read_f32(DType::F16, &stored, 0);
        assert_ne!(s16, s32, "the test needs a scale f16 cannot hold");
        let mut codes = Vec::new();
        row_codes(&w, 4, BLOCK, &mut codes);
        for (i, &v) in w.iter().enumerate() {
            let q = if i % 2 == 0 {
                codes[i / 2] & 15
            } else {
                codes[i / 2] >> 4
            };
            let back = (q as f32 - 8.0) * s16;
            // Half a step, plus at most 8 steps times the scale's f16 rounding.
            let bound = s32 * 0.5 + 8.0 * (s32 - s16).abs() + 1e-7;
            assert!((back - v).abs() <= bound, "w[{i}] = {v}, got {back}");
        }
    }

    #[test]
    fn int8_codes_are_centred_on_128() {
        let w = vec![0.0f32; BLOCK];
        let mut codes = Vec::new();
        row_codes(&w, 8, BLOCK, &mut codes);
        assert!(codes.iter().all(|&c| c == 128));
    }
}

#[cfg(test)]
mod block_tests {
    use super::*;

    #[test]
    fn larger_blocks_give_one_scale_per_block() {
        let w: Vec<f32> = (0..200).map(|i| (i as f32 * 0.37).sin()).collect();
        for block in [16usize, 64, 128] {
            assert_eq!(row_scales(&w, 8, block).len(), 200usize.div_ceil(block));
            let mut codes = Vec::new();
            row_codes(&w, 4, block, &mut codes);
            assert_eq!(codes.len(), 200usize.div_ceil(block) * block / 2);
        }
    }
}
