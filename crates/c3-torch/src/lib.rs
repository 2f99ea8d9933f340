//! The C3 cascade on libtorch (tch): the reference implementation used by
//! training, by `c3 roundtrip --checkpoint`, and to verify the ONNX export.
//!
//! Module structs are named like the checkpoint keys they load: variable
//! `model.layers.3.self_attn.q_proj.weight` is field `model.layers[3].self_attn.q_proj.weight`,
//! and the encoder lives under the `llm1.` prefix exactly like the `llm1/` folder.

mod c3;
mod cascade;
mod device;
mod error;
mod generate;
mod kv_cache;
mod load;
mod nn;
mod qwen2;
mod rope;

pub use c3::{C3Model, EncoderBatch};
pub use cascade::TorchCascade;
pub use device::{LIBTORCH_CUDA_ENV, load_cuda_backend, parse_device};
pub use error::{Error, Result};
pub use generate::generate;
pub use kv_cache::KvCache;
pub use load::{load_model, save_model, tensor_from_view};
pub use qwen2::Qwen2Model;
pub use tch;
