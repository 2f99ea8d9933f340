//! What benchmarks measure beside the runtime (feature `bench`, off by default: not
//! part of the library's API for serving): the machine's limits (memory bandwidth,
//! matmul rate), the process's memory high-water marks, and zero embeddings to feed
//! a timed prefill or step.

pub mod limits;
pub mod memory;

use crate::error::Result;
use crate::model::C3Runtime;
use crate::values::{Embeds, float_value};

/// Token embeddings `[rows, seq, hidden]` in the export dtype, zeros: what a timed
/// prefill or step is fed (values do not change the work).
pub fn zero_embeds(rt: &C3Runtime, rows: usize, seq: usize) -> Result<Embeds> {
    let d = rt.manifest.hidden;
    float_value(rt.dtype(), &[rows, seq, d], &vec![0.0; rows * seq * d]).map(Embeds)
}
