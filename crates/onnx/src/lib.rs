//! ONNX files ↔ whittle IR.
//!
//! [`read_model`] memory-maps a file and converts it (tensor payloads stay views of the
//! map); [`save_model`] streams the encoding to a temporary file and renames it into
//! place. An unmodified model is written back protobuf-equal to its input. This is the
//! only crate that sees protobuf types.

mod attribute_wire;
mod check;
mod compact;
pub mod convert;
pub mod error;
pub mod export;
pub mod external;
pub mod file;
pub mod import;
mod mapped;
pub mod proto;
pub mod sink;
pub mod targets;
mod validate;
pub mod wire_list;

pub use check::{Saved, compare_saved};
pub use error::OnnxError;
pub use export::ExportOptions;
pub use file::{
    SaveReport, decode, encode_model, encode_model_inline, read_model, read_model_bytes,
    read_model_lazy, read_tensor, save_model,
};
pub use targets::InputFiles;
