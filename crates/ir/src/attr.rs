//! Node attributes.

use crate::graph::Graph;
use crate::list::List;
use crate::meta::Opaque;
use crate::tensor::Tensor;
use crate::types::Type;
use bytes::Bytes;

/// `AttributeProto.AttributeType` codes.
pub mod kind {
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const TENSOR: i32 = 4;
    pub const GRAPH: i32 = 5;
    pub const FLOATS: i32 = 6;
    pub const INTS: i32 = 7;
    pub const STRINGS: i32 = 8;
    pub const TENSORS: i32 = 9;
    pub const GRAPHS: i32 = 10;
    pub const SPARSE_TENSOR: i32 = 11;
    pub const SPARSE_TENSORS: i32 = 12;
    pub const TYPE_PROTO: i32 = 13;
    pub const TYPE_PROTOS: i32 = 14;
}

/// A node attribute. It mirrors every field of `AttributeProto` (a file may set more than
/// the one `type` names) so export is exact; passes use the typed accessors.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Attribute {
    pub name: Option<String>,
    pub ref_attr_name: Option<String>,
    pub doc_string: Option<String>,
    /// The `AttributeType` code.
    pub kind: Option<i32>,
    pub f: Option<f32>,
    pub i: Option<i64>,
    pub s: Option<Bytes>,
    pub t: Option<Box<Tensor>>,
    pub g: Option<Box<Graph>>,
    pub sparse_tensor: Option<Opaque>,
    pub tp: Option<Type>,
    pub floats: List<f32>,
    pub ints: List<i64>,
    pub strings: List<Bytes>,
    pub tensors: Vec<Tensor>,
    pub graphs: Vec<Graph>,
    pub sparse_tensors: Vec<Opaque>,
    pub type_protos: Vec<Type>,
}

impl Attribute {
    /// The name, or "" when absent.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// An INT attribute.
    pub fn int(name: &str, v: i64) -> Attribute {
        Attribute {
            name: Some(name.into()),
            kind: Some(kind::INT),
            i: Some(v),
            ..Default::default()
        }
    }

    /// A FLOAT attribute.
    pub fn float(name: &str, v: f32) -> Attribute {
        Attribute {
            name: Some(name.into()),
            kind: Some(kind::FLOAT),
            f: Some(v),
            ..Default::default()
        }
    }

    /// An INTS attribute.
    pub fn ints(name: &str, v: Vec<i64>) -> Attribute {
        Attribute {
            name: Some(name.into()),
            kind: Some(kind::INTS),
            ints: v.into(),
            ..Default::default()
        }
    }

    /// A STRING attribute.
    pub fn string(name: &str, v: &str) -> Attribute {
        Attribute {
            name: Some(name.into()),
            kind: Some(kind::STRING),
            s: Some(Bytes::copy_from_slice(v.as_bytes())),
            ..Default::default()
        }
    }

    /// A TENSOR attribute.
    pub fn tensor(name: &str, t: Tensor) -> Attribute {
        Attribute {
            name: Some(name.into()),
            kind: Some(kind::TENSOR),
            t: Some(Box::new(t)),
            ..Default::default()
        }
    }

    /// The subgraphs this attribute holds (GRAPH or GRAPHS).
    pub fn subgraphs(&self) -> impl Iterator<Item = &Graph> {
        self.g.iter().map(|g| &**g).chain(self.graphs.iter())
    }

    /// The subgraphs this attribute holds, mutably.
    pub fn subgraphs_mut(&mut self) -> impl Iterator<Item = &mut Graph> {
        self.g
            .iter_mut()
            .map(|g| &mut **g)
            .chain(self.graphs.iter_mut())
    }
}
