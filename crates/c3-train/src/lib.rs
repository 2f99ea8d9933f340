//! Training C3 (spec §5) on tch: corpus -> passages -> C3 samples (encoder ids
//! with the query block; decoder prompt + answer + `<|im_end|>`, loss on the
//! answer only), AdamW with warmup + cosine, accumulation, clipping, periodic
//! held-out evaluation, atomic checkpoints in the release layout, and exact
//! resume: everything random is a function of (seed, step), and the optimizer
//! state travels inside each checkpoint.

#[cfg(feature = "torch")]
mod batch;
mod data;
mod error;
#[cfg(feature = "torch")]
mod optim;
mod recipe;
#[cfg(feature = "torch")]
mod state;
#[cfg(feature = "torch")]
mod trainer;

#[cfg(feature = "torch")]
pub use batch::{Batch, IGNORE, make_batch};
pub use data::{Passage, PassageSet, permutation};
pub use error::{Error, Result};
pub use recipe::Recipe;
#[cfg(feature = "torch")]
pub use trainer::{Evaluation, Event, Outcome, Trainer};
