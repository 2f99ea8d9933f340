//! Rotary position embedding as Qwen2 applies it: frequencies in f32 from
//! `rope_theta`, rotate-half layout, positions given per row so left-padded
//! batches see 0..len-1 exactly like unbatched sequences.

use tch::{Device, Kind, Tensor};

/// Precomputed inverse frequencies for one head width.
#[derive(Debug)]
pub struct Rope {
    inv_freq: Tensor,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f64, device: Device) -> Self {
        let exps = Tensor::arange_start_step(0, head_dim as i64, 2, (Kind::Int64, device))
            .to_kind(Kind::Float)
            / head_dim as f64;
        let inv_freq = Tensor::from(theta)
            .to_kind(Kind::Float)
            .pow(&exps)
            .reciprocal();
        Rope { inv_freq }
    }

    /// cos/sin `[B, L, head_dim]` for positions `[B, L]` (int64).
    pub fn cos_sin(&self, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * self.inv_freq.view([1, 1, -1]);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
    }
}

fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let x1 = x.narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    Tensor::cat(&[&x2.neg(), &x1], 3)
}

/// Applies the rotation to `[B, H, L, D]` with cos/sin `[B, L, D]`.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let (c, s) = (cos.unsqueeze(1), sin.unsqueeze(1));
    x * &c + rotate_half(x) * &s
}
