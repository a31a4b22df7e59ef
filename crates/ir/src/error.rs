//! Errors raised by the IR: each names the graph element at fault.

use thiserror::Error;

/// Something about a graph is inconsistent or malformed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    #[error("tensor '{tensor}': {reason}")]
    BadTensor { tensor: String, reason: String },
    #[error("value '{value}' is defined twice ({first} and {second})")]
    DuplicateDefinition {
        value: String,
        first: String,
        second: String,
    },
    #[error("node '{node}' ({op}) uses value '{value}', which is never defined")]
    Undefined {
        node: String,
        op: String,
        value: String,
    },
    #[error("graph output '{value}' is never defined")]
    UndefinedOutput { value: String },
    #[error("the graph has a cycle through node '{node}' ({op})")]
    Cycle { node: String, op: String },
    #[error("text: {0}")]
    Parse(String),
    #[error("graph invariant broken: {0}")]
    Invariant(String),
}
