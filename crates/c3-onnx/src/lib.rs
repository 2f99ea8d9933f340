//! ONNX for C3: the ONNX protobuf types and a small typed graph builder, with no
//! `protoc`, no libtorch and no Python.
//!
//! - [`proto`]: prost types generated from `onnx.proto` (onnx 1.19.1), checked in.
//! - [`GraphBuilder`]: graph inputs/outputs with symbolic dims, initializers (in memory
//!   or streamed at write time), nodes with attributes and domains, helpers for the
//!   standard ops of an LLM export, readable unique names that follow checkpoint keys.
//!   Values are typed ([`Value`]: name + [`ElemType`]); each op checks its inputs'
//!   types as it is added, so a missing `Cast` fails at build time, naming the node.
//! - [`Model::write`]: atomic write; big initializers go to `<model>.onnx.data`
//!   (`data_location = EXTERNAL`, 4096-aligned offsets), so models may exceed 2 GB.
//! - [`load_model`] and [`op_types`]: read a model back and list its operators.
//! - [`ort_env`] (feature `ort`, default): load ONNX Runtime once per process.
//!
//! ```
//! use c3_onnx::{Dim, ElemType, GraphBuilder};
//! # fn main() -> c3_onnx::Result<()> {
//! let mut g = GraphBuilder::new("tiny");
//! let x = g.input("x", ElemType::F32, &[Dim::sym("batch"), Dim::Fixed(2)])?;
//! let w = g.initializer_from("proj.weight", &[2, 2], &[1.0f32, 0.0, 0.0, 1.0])?;
//! let y = g.scoped("proj", |g| g.matmul(&x, &w))?;
//! g.output(&y, ElemType::F32, &[Dim::sym("batch"), Dim::Fixed(2)])?;
//! let model = g.finish();
//! assert_eq!(model.to_proto()?.graph.map(|g| g.node.len()), Some(1));
//! # Ok(())
//! # }
//! ```

mod attr;
mod consts;
mod dtype;
mod error;
mod graph;
mod model;
mod ops;
pub mod proto;
mod read;
mod tensor;
mod types;
mod value;
mod write;

#[cfg(feature = "ort")]
pub mod ort_env;
/// The `ort` and `ndarray` versions this crate was built with, so users agree on them.
#[cfg(feature = "ort")]
pub use {ndarray, ort};

pub use attr::Attr;
pub use dtype::{Dim, ElemType};
pub use error::{Error, Result};
pub use graph::{DEFAULT_OPSET, GraphBuilder, IR_VERSION, MS_DOMAIN, NodeBuilder};
pub use model::Model;
pub use read::{decode_model, external_data_locations, is_standard_domain, load_model, op_types};
pub use tensor::{Element, TensorData, TensorSource, le_bytes, scalar_bytes};
pub use value::Value;
pub use write::{WriteOptions, WriteSummary};
