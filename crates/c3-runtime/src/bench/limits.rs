//! This machine's own limits, measured in a few seconds, so benchmarks can put every
//! figure beside its floor: a decode step cannot be faster than reading the
//! decoder's weights once at the memory bandwidth, a prefill cannot beat its FLOPs at
//! the best matmul throughput ONNX Runtime reaches here.
//!
//! Both are measured, not looked up: the bandwidth by streaming reads of a buffer far
//! larger than the caches on `threads` threads (what ONNX Runtime's intra-op pool
//! uses), the matmul throughput by timing ONNX Runtime's own fp32 `MatMul` on a
//! square-ish problem, so "% of floor" compares the model's kernels with the best
//! kernel of the same library, not with a datasheet.

use std::hint::black_box;
use std::time::{Duration, Instant};

use c3_onnx::ort::value::Tensor;
use c3_onnx::{Dim, ElemType, GraphBuilder};

use crate::error::{Error, Result};
use crate::provider::{Provider, session};

/// What [`measure`] found.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MachineLimits {
    /// Streaming read bandwidth, bytes per second.
    pub read_bytes_per_second: f64,
    /// ONNX Runtime fp32 MatMul throughput, FLOP per second.
    pub matmul_flops_per_second: f64,
    /// Threads both were measured with.
    pub threads: usize,
}

impl MachineLimits {
    /// Seconds to read `bytes` once at the measured bandwidth.
    pub fn read_floor(&self, bytes: f64) -> f64 {
        bytes / self.read_bytes_per_second
    }

    /// Seconds to compute `flops` at the measured matmul throughput.
    pub fn flop_floor(&self, flops: f64) -> f64 {
        flops / self.matmul_flops_per_second
    }
}

/// Measures both limits with `threads` threads (0 = all cores), `budget` each at most
/// (after the first repetition).
pub fn measure(threads: usize, budget: Duration) -> Result<MachineLimits> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    Ok(MachineLimits {
        read_bytes_per_second: read_bandwidth(512 << 20, threads, budget),
        matmul_flops_per_second: matmul_throughput(512, 2048, 2048, threads, budget)?,
        threads,
    })
}

/// Best of repeated streaming sums over `bytes` of f32 split across `threads`.
/// The best, not the median: a floor is what the machine can do, and a slower
/// repetition only measured a neighbour on this shared machine.
pub fn read_bandwidth(bytes: usize, threads: usize, budget: Duration) -> f64 {
    let data = vec![1.0f32; (bytes / 4).max(1024)];
    let chunk = data.len().div_ceil(threads.max(1));
    let start = Instant::now();
    let mut best = f64::INFINITY;
    // Touch every page once untimed (first-touch page faults are not bandwidth).
    black_box(sum(&data));
    while best.is_infinite() || start.elapsed() < budget {
        let t = Instant::now();
        std::thread::scope(|s| {
            for part in data.chunks(chunk) {
                s.spawn(move || black_box(sum(part)));
            }
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    (data.len() * 4) as f64 / best
}

/// Eight independent accumulators so the loop is bound by loads, not by the
/// latency of one dependent add chain (the compiler vectorises this).
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Best FLOP/s of ONNX Runtime's fp32 `[m, k] x [k, n]` MatMul on the CPU.
pub fn matmul_throughput(
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
    budget: Duration,
) -> Result<f64> {
    let mut g = GraphBuilder::new("c3_limits_matmul");
    let d = |v: usize| Dim::Fixed(v as i64);
    let a = g.input("a", ElemType::F32, &[d(m), d(k)]).map_err(onnx)?;
    let b = g.input("b", ElemType::F32, &[d(k), d(n)]).map_err(onnx)?;
    let c = g
        .node("MatMul", &[&a, &b])
        .output_names(&["c"])
        .output()
        .map_err(onnx)?;
    g.output(&c, ElemType::F32, &[d(m), d(n)]).map_err(onnx)?;
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let path = dir.path().join("matmul.onnx");
    g.finish().write(&path).map_err(onnx)?;
    let mut s = session(&path, &Provider::Cpu, false, threads)?;
    let av = Tensor::from_array(([m, k], vec![0.5f32; m * k]))?;
    let bv = Tensor::from_array(([k, n], vec![0.25f32; k * n]))?;
    let mut run = || -> Result<f64> {
        let t = Instant::now();
        let out = s.run(c3_onnx::ort::inputs!["a" => av.view(), "b" => bv.view()])?;
        black_box(&out);
        Ok(t.elapsed().as_secs_f64())
    };
    run()?;
    let start = Instant::now();
    let mut best = f64::INFINITY;
    while best.is_infinite() || start.elapsed() < budget {
        best = best.min(run()?);
    }
    Ok(2.0 * (m * k * n) as f64 / best)
}

fn onnx(e: c3_onnx::Error) -> Error {
    Error::Internal(format!("building the matmul probe graph: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_counts_every_element() {
        let v: Vec<f32> = (0..1003).map(|i| (i % 7) as f32).collect();
        let want: f32 = v.iter().sum();
        assert_eq!(sum(&v), want);
    }

    #[test]
    fn limits_are_positive_and_plausible() {
        let bw = read_bandwidth(8 << 20, 2, Duration::from_millis(50));
        // Any machine this runs on reads between 100 MB/s and 10 TB/s.
        assert!((1e8..1e13).contains(&bw), "{bw}");
        let f = matmul_throughput(64, 128, 128, 1, Duration::from_millis(50)).unwrap();
        assert!((1e7..1e15).contains(&f), "{f}");
        let l = MachineLimits {
            read_bytes_per_second: 1e9,
            matmul_flops_per_second: 2e9,
            threads: 1,
        };
        assert_eq!(l.read_floor(3e9), 3.0);
        assert_eq!(l.flop_floor(1e9), 0.5);
    }
}
