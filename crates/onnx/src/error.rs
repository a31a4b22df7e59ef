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
    #[error("{}: not a valid ONNX model (protobuf decoding failed: {reason})", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error("{}: the file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{context}: {source}")]
    Ir { context: String, source: IrError },
    #[error("tensor '{tensor}': external data: {reason}")]
    External { tensor: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// A save would write over a file that is not its own (nothing was written).
    #[error("{0}")]
    WouldOverwrite(String),
}

impl OnnxError {
    /// Wraps an IR error with where it happened (graph or file).
    pub fn ir(context: impl Into<String>, source: IrError) -> OnnxError {
        OnnxError::Ir {
            context: context.into(),
            source,
        }
    }

    /// A protobuf decoding failure, its field path shortened to the outermost and
    /// innermost few fields (a deeply nested file would otherwise give a page of text).
    pub fn decode(path: &std::path::Path, e: &prost::DecodeError) -> OnnxError {
        let text = e.to_string();
        let text = text
            .strip_prefix("failed to decode Protobuf message: ")
            .unwrap_or(&text);
        let parts: Vec<&str> = text.split(": ").collect();
        let reason = if parts.len() > 8 {
            format!(
                "{}: … {} more fields …: {}",
                parts[..3].join(": "),
                parts.len() - 6,
                parts[parts.len() - 3..].join(": ")
            )
        } else {
            text.to_string()
        };
        OnnxError::Decode {
            path: path.to_path_buf(),
            reason,
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
