//! whittle's graph IR.
//!
//! A [`Model`] holds a main [`Graph`]; a graph holds [`Node`]s (in a petgraph
//! `StableGraph`) and named [`Value`]s with their types and, for initializers, their
//! constant [`Tensor`]s. The IR knows nothing of protobuf: `whittle-onnx` converts.
//! Everything a file says is kept, so an unmodified model exports equal to its input.

pub mod attr;
pub mod attrs;
pub mod cost;
pub mod deferred;
pub mod dtype;
pub mod edits;
pub mod error;
pub mod evaluate;
pub mod graph;
pub mod infer;
pub mod list;
pub mod meta;
pub mod model;
pub mod node;
pub mod phase;
mod scope;
pub mod stats;
pub mod tensor;
pub mod text;
pub mod types;
mod verify;

pub use attr::Attribute;
pub use attrs::Attributes;
pub use deferred::Deferred;
pub use dtype::DataType;
pub use error::IrError;
pub use graph::{Graph, IoList, NodeId, ShadowInfo, Slot, TensorAnnotation, Use, Value, ValueId};
pub use meta::{Opaque, OpsetImport, StringPair};
pub use model::{Function, Model};
pub use node::Node;
pub use phase::Phase;
pub use tensor::{Segment, Tensor, TensorData};
pub use types::{Dim, ShapeDim, Type, TypeKind, ValueInfo};
