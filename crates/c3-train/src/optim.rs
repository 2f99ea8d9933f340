//! AdamW (decoupled weight decay, PyTorch's update rule), global-norm clipping and
//! the warmup + cosine schedule. Written here rather than taken from libtorch's
//! optimizer so that its state (step, first and second moments per variable) can
//! be saved into checkpoints and restored bit-exactly.

use std::collections::BTreeMap;

use c3_torch::tch::{Kind, Tensor};

use crate::recipe::{OptimRecipe, ScheduleRecipe};

/// Learning rate at `step` (0-based): linear warmup to the peak, then cosine to
/// `min_lr_ratio * peak` at `total_steps`.
pub fn lr_at(step: usize, peak: f64, s: &ScheduleRecipe) -> f64 {
    if step < s.warmup_steps {
        return peak * (step + 1) as f64 / s.warmup_steps as f64;
    }
    let span = (s.total_steps.saturating_sub(s.warmup_steps)).max(1) as f64;
    let t = ((step - s.warmup_steps) as f64 / span).min(1.0);
    let floor = peak * s.min_lr_ratio;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

/// One trainable variable with its moments and lr multiplier.
pub struct Param {
    pub var: Tensor,
    pub m: Tensor,
    pub v: Tensor,
    pub lr_scale: f64,
}

/// AdamW over named variables.
pub struct AdamW {
    pub params: BTreeMap<String, Param>,
    /// Optimizer steps taken.
    pub step: u64,
    cfg: OptimRecipe,
}

impl AdamW {
    /// `latent_path(name)` says whether a variable gets `latent_lr_scale`.
    pub fn new(
        vars: Vec<(String, Tensor)>,
        cfg: &OptimRecipe,
        latent_path: impl Fn(&str) -> bool,
    ) -> Self {
        let params = vars
            .into_iter()
            .filter(|(_, v)| v.requires_grad())
            .map(|(name, var)| {
                let lr_scale = if latent_path(&name) {
                    cfg.latent_lr_scale
                } else {
                    1.0
                };
                let m = var.zeros_like().to_kind(Kind::Float);
                let v = var.zeros_like().to_kind(Kind::Float);
                (
                    name,
                    Param {
                        var,
                        m,
                        v,
                        lr_scale,
                    },
                )
            })
            .collect();
        AdamW {
            params,
            step: 0,
            cfg: cfg.clone(),
        }
    }

    /// Clips gradients to `clip` global L2 norm; returns the norm before clipping.
    pub fn clip_grads(&mut self) -> f64 {
        let grads: Vec<Tensor> = self
            .params
            .values()
            .map(|p| p.var.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let norms: Vec<Tensor> = grads
            .iter()
            .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
            .collect();
        let total = Tensor::stack(&norms, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[]);
        if self.cfg.clip > 0.0 && total > self.cfg.clip {
            let scale = self.cfg.clip / (total + 1e-6);
            c3_torch::tch::no_grad(|| {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(scale);
                }
            });
        }
        total
    }

    /// One update with peak-relative lr `lr`, then zeroes the gradients.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let t = self.step as f64;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let bc1 = 1.0 - b1.powf(t);
        let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
        c3_torch::tch::no_grad(|| {
            for p in self.params.values_mut() {
                let g = p.var.grad();
                if !g.defined() {
                    continue;
                }
                let g = g.to_kind(Kind::Float);
                let lr = lr * p.lr_scale;
                let _ = p.m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = p.v.g_mul_scalar_(b2).g_add_(&(g.square() * (1.0 - b2)));
                let denom = p.v.sqrt() / bc2_sqrt + self.cfg.eps;
                let update = (&p.m / denom) * (lr / bc1);
                if self.cfg.weight_decay != 0.0 {
                    let _ = p.var.g_mul_scalar_(1.0 - lr * self.cfg.weight_decay);
                }
                let _ = p.var.g_sub_(&update.to_kind(p.var.kind()));
                p.var.zero_grad();
            }
        });
    }

    /// Zeroes every gradient (after an aborted accumulation).
    pub fn zero_grad(&mut self) {
        for p in self.params.values_mut() {
            p.var.zero_grad();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let s = ScheduleRecipe {
            total_steps: 1100,
            warmup_steps: 100,
            min_lr_ratio: 0.1,
            ..Default::default()
        };
        assert!((lr_at(0, 1.0, &s) - 0.01).abs() < 1e-12);
        assert!((lr_at(99, 1.0, &s) - 1.0).abs() < 1e-12);
        assert!((lr_at(100, 1.0, &s) - 1.0).abs() < 1e-12);
        assert!((lr_at(600, 1.0, &s) - 0.55).abs() < 1e-12);
        assert!((lr_at(1100, 1.0, &s) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn adamw_matches_the_closed_form_first_step() {
        // First AdamW step moves each weight by lr * sign(g) (m/sqrt(v) = g/|g|).
        let w = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let cfg = OptimRecipe {
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(vec![("w".into(), w.shallow_clone())], &cfg, |_| false);
        let loss = (&w * Tensor::from_slice(&[3.0f32, -0.5])).sum(Kind::Float);
        loss.backward();
        opt.step(0.1);
        let got = Vec::<f32>::try_from(&w.detach()).unwrap();
        assert!(
            (got[0] - 0.9).abs() < 1e-6 && (got[1] + 1.9).abs() < 1e-6,
            "{got:?}"
        );
    }
}
