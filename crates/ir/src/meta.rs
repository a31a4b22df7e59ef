//! Small pieces of model metadata the IR carries verbatim.

use bytes::Bytes;

/// A key/value pair (`StringStringEntryProto`), with field presence kept.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StringPair {
    pub key: Option<String>,
    pub value: Option<String>,
}

impl StringPair {
    /// A pair with both fields present.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        StringPair {
            key: Some(key.into()),
            value: Some(value.into()),
        }
    }

    /// The key, or "" when absent.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("")
    }

    /// The value, or "" when absent.
    pub fn value(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }
}

/// An operator set import: a domain ("" or absent = the default `ai.onnx` domain) and version.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OpsetImport {
    pub domain: Option<String>,
    pub version: Option<i64>,
}

impl OpsetImport {
    /// The domain, with `ai.onnx` normalised to "".
    pub fn domain(&self) -> &str {
        match self.domain.as_deref() {
            None | Some("ai.onnx") => "",
            Some(d) => d,
        }
    }
}

/// A message the IR keeps without interpreting it (training info, device configurations,
/// sparse tensors, ...), held in its encoded protobuf form so export reproduces it exactly.
/// Only the `whittle-onnx` crate encodes and decodes these bytes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Opaque(pub Bytes);
