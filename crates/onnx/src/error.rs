//! Errors of reading and writing ONNX files; each names the file, tensor or node at fault.

use std::path::PathBuf;
use thiserror::Error;
use whittle_ir::IrError;

/// A failure to read, convert or write a model.
#[derive(Debug, Error)]
pub enum OnnxError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid ONNX model (protobuf decoding failed: {source})", path.display())]
    Decode {
        path: PathBuf,
        source: prost::DecodeError,
    },
    #[error("{}: the file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{context}: {source}")]
    Ir { context: String, source: IrError },
    #[error("tensor '{tensor}': external data: {reason}")]
    External { tensor: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl OnnxError {
    /// Wraps an IR error with where it happened (graph or file).
    pub fn ir(context: impl Into<String>, source: IrError) -> OnnxError {
        OnnxError::Ir {
            context: context.into(),
            source,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> OnnxError {
        OnnxError::Io {
            path: path.into(),
            source,
        }
    }
}
