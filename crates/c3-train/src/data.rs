//! Passages: documents tokenized with the model's tokenizer and cut into pieces
//! whose lengths follow the recipe's range; a held-out split fixed by the seed;
//! and the training order as a pure function of (seed, sample index), so a
//! resumed run sees exactly the samples it would have seen.

use c3_core::C3Tokenizer;
use c3_core::corpus::{list_files, read_documents};
use c3_core::presets::SplitMix64;

use crate::error::{Error, Result};
use crate::recipe::DataRecipe;

/// A passage: its token ids and the text they decode to (the reference for
/// evaluation: what a perfect reconstruction would print).
#[derive(Debug, Clone)]
pub struct Passage {
    pub ids: Vec<u32>,
    pub text: String,
}

/// Train and held-out passages.
pub struct PassageSet {
    pub train: Vec<Passage>,
    pub held_out: Vec<Passage>,
}

impl PassageSet {
    /// Reads the corpus and cuts it. Pieces that decode to invalid UTF-8 (a cut
    /// inside a multi-byte character) or to blank text are dropped.
    pub fn build(recipe: &DataRecipe, tok: &C3Tokenizer, seed: u64) -> Result<Self> {
        let files = list_files(&recipe.paths, &recipe.extensions)?;
        if files.is_empty() {
            return Err(Error::Input(format!(
                "no corpus files with extensions {:?} under {:?}",
                recipe.extensions, recipe.paths
            )));
        }
        let docs = read_documents(&files)?;
        let mut rng = SplitMix64::new(seed ^ 0x5eed_da7a);
        let span = (recipe.max_tokens - recipe.min_tokens + 1) as u64;
        let mut all = Vec::new();
        for d in &docs {
            let ids = tok.encode(&d.text)?;
            let mut pos = 0;
            while pos + recipe.min_tokens <= ids.len() {
                let len =
                    (recipe.min_tokens + (rng.next_u64() % span) as usize).min(ids.len() - pos);
                let piece = &ids[pos..pos + len];
                pos += len;
                let text = tok.decode(piece)?;
                if text.contains('\u{fffd}') || text.trim().is_empty() {
                    continue;
                }
                all.push(Passage {
                    ids: piece.to_vec(),
                    text,
                });
            }
        }
        if all.len() <= recipe.held_out {
            return Err(Error::Input(format!(
                "the corpus gives {} passages, not more than held_out = {}",
                all.len(),
                recipe.held_out
            )));
        }
        let order = permutation(all.len(), seed ^ 0x0e7a_1d00);
        let held: std::collections::HashSet<usize> =
            order[..recipe.held_out].iter().copied().collect();
        let (mut train, mut held_out) = (Vec::new(), Vec::new());
        for (i, p) in all.into_iter().enumerate() {
            if held.contains(&i) {
                held_out.push(p)
            } else {
                train.push(p)
            }
        }
        Ok(PassageSet { train, held_out })
    }

    /// Index into `train` of global sample `k` (epoch-wise reshuffled).
    pub fn sample_index(&self, seed: u64, k: u64, cache: &mut EpochCache) -> usize {
        let n = self.train.len() as u64;
        let epoch = k / n;
        if cache.epoch != Some(epoch) {
            cache.perm = permutation(n as usize, seed ^ epoch.wrapping_mul(0x9e37_79b9));
            cache.epoch = Some(epoch);
        }
        cache.perm[(k % n) as usize]
    }
}

/// The current epoch's permutation, recomputed only when the epoch changes.
#[derive(Default)]
pub struct EpochCache {
    epoch: Option<u64>,
    perm: Vec<usize>,
}

/// Fisher-Yates permutation of 0..n from a seed.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}
