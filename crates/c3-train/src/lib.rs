//! Training C3 (spec §5) on tch: corpus -> passages -> C3 samples (encoder ids
//! with the query block; decoder prompt + answer + `<|im_end|>`, loss on the
//! answer only), AdamW with warmup + cosine, accumulation, clipping, periodic
//! held-out evaluation, atomic checkpoints in the release layout, and exact
//! resume: everything random is a function of (seed, step), and the optimizer
//! state travels inside each checkpoint.

mod batch;
mod data;
mod error;
mod optim;
mod recipe;
mod state;
mod trainer;

pub use batch::{Batch, IGNORE, make_batch};
pub use data::{Passage, PassageSet, permutation};
pub use error::{Error, Result};
pub use recipe::Recipe;
pub use trainer::{Event, Outcome, Trainer};
