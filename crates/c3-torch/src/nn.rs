//! The three leaf modules of Qwen2: Linear, RMSNorm and the embedding table,
//! each holding VarStore variables whose names are the checkpoint keys.

use tch::nn::{Init, Path};
use tch::{Kind, Tensor};

/// `y = x W^T (+ b)`, weight `[out, in]` as in PyTorch.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(p: Path, d_in: usize, d_out: usize, bias: bool) -> Self {
        let weight = p.var("weight", &[d_out as i64, d_in as i64], Init::Const(0.0));
        let bias = bias.then(|| p.var("bias", &[d_out as i64], Init::Const(0.0)));
        Linear { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.matmul(&self.weight.tr());
        match &self.bias {
            Some(b) => y + b,
            None => y,
        }
    }
}

/// Qwen2RMSNorm: normalise in f32, scale by the weight in the input dtype.
#[derive(Debug)]
pub struct RmsNorm {
    pub weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn new(p: Path, dim: usize, eps: f64) -> Self {
        RmsNorm {
            weight: p.var("weight", &[dim as i64], Init::Const(1.0)),
            eps,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let xf = x.to_kind(Kind::Float);
        let var = xf.square().mean_dim(-1, true, Kind::Float);
        let normed = xf * (var + self.eps).rsqrt();
        &self.weight * normed.to_kind(kind)
    }
}

/// Token embedding table `[vocab, hidden]`.
#[derive(Debug)]
pub struct Embedding {
    pub weight: Tensor,
}

impl Embedding {
    pub fn new(p: Path, vocab: usize, dim: usize) -> Self {
        Embedding {
            weight: p.var("weight", &[vocab as i64, dim as i64], Init::Const(0.0)),
        }
    }

    pub fn forward(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.weight, ids, -1, false, false)
    }
}
