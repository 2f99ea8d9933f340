//! One window's latents on the host, valid by construction: whatever made them (the
//! encoder, a latent file, a caller), a [`Latents`] has its shape and finite values.

use crate::error::{Error, Result, ensure};

/// One document's latents `[n, dim]` (f32 on the host, whatever the export dtype).
/// Built only by [`Latents::new`], so every value holds its shape and finite values.
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    n: usize,
    dim: usize,
    data: Vec<f32>,
    text_tokens: usize,
}

impl Latents {
    /// `n` latents of width `dim` (row-major `data`) of a document of `text_tokens`
    /// tokens. Refuses an empty shape, a length other than `n * dim` and NaN or ±Inf:
    /// the decoder would read past the slots or decode garbage without a word.
    pub fn new(n: usize, dim: usize, data: Vec<f32>, text_tokens: usize) -> Result<Self> {
        ensure!(
            n > 0 && dim > 0,
            Input,
            "latents of shape [{n}, {dim}] hold nothing"
        );
        ensure!(
            n.checked_mul(dim) == Some(data.len()),
            Input,
            "latents hold {} values, expected {n} x {dim} = {}",
            data.len(),
            n.saturating_mul(dim)
        );
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "latents hold a non-finite value ({}) at index {i}",
                data[i]
            )));
        }
        Ok(Latents {
            n,
            dim,
            data,
            text_tokens,
        })
    }

    /// N, the latent vectors.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Width of each latent vector (the decoder's hidden size).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `[n, dim]` values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The document's length in the model's tokens.
    pub fn text_tokens(&self) -> usize {
        self.text_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_refuses_what_the_decoder_cannot_use() {
        let l = Latents::new(2, 3, vec![0.5; 6], 7).unwrap();
        assert_eq!(
            (l.n(), l.dim(), l.data(), l.text_tokens()),
            (2, 3, &[0.5; 6][..], 7)
        );
        let err = |n, dim, data: Vec<f32>| Latents::new(n, dim, data, 1).unwrap_err().to_string();
        assert_eq!(
            err(4, 8, vec![0.0; 10]),
            "latents hold 10 values, expected 4 x 8 = 32"
        );
        assert_eq!(err(0, 8, vec![]), "latents of shape [0, 8] hold nothing");
        let mut bad = vec![0.0; 6];
        bad[3] = f32::NAN;
        assert_eq!(
            err(2, 3, bad),
            "latents hold a non-finite value (NaN) at index 3"
        );
        bad = vec![0.0; 6];
        bad[5] = f32::NEG_INFINITY;
        assert_eq!(
            err(2, 3, bad),
            "latents hold a non-finite value (-inf) at index 5"
        );
        assert!(matches!(
            Latents::new(1, 1, vec![], 1),
            Err(Error::Input(_))
        ));
        assert!(Latents::new(usize::MAX, 2, vec![0.0], 1).is_err());
    }
}

impl Latents {
    /// Refuses latents of another shape than an export's `[n, dim]` (the caller's
    /// input: latents of another export).
    pub(crate) fn check_shape(&self, n: usize, dim: usize) -> Result<()> {
        ensure!(
            self.n() == n && self.dim() == dim,
            Input,
            "latents are [{}, {}], this export takes [{n}, {dim}]",
            self.n(),
            self.dim()
        );
        Ok(())
    }
}
