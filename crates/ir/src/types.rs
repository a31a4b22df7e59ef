//! Value types: element type plus shape with symbolic dimensions.

use crate::dtype::DataType;
use crate::meta::StringPair;
use std::fmt;

/// One dimension of a shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known size.
    Known(i64),
    /// A named symbol (`batch`, `seq`), equal wherever the same name appears.
    Param(String),
    /// Nothing is known.
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Param(p) => f.write_str(p),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A dimension as written in the file: the value plus its optional denotation.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeDim {
    pub dim: Dim,
    pub denotation: Option<String>,
    /// What the file wrote for a dim it meant as unknown: a negative size (Paddle2ONNX
    /// and some TensorFlow converters write -1 for "dynamic"; onnx.checker and ONNX
    /// Runtime accept it) or the symbol `?` (Paddle2ONNX again, for every dynamic dim, so
    /// it names no one size). Such a dim reads as [`Dim::Unknown`] and is written back as
    /// it was while it stays unknown, so the round trip is unchanged.
    pub written: Option<Dim>,
}

impl From<Dim> for ShapeDim {
    fn from(dim: Dim) -> Self {
        ShapeDim {
            dim,
            denotation: None,
            written: None,
        }
    }
}

/// The type of a value, mirroring `TypeProto` so nothing is lost on the way through.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    /// A dense tensor. `shape` None means the rank is unknown; `Some([])` is a scalar.
    Tensor {
        elem: Option<DataType>,
        shape: Option<Vec<ShapeDim>>,
    },
    /// A sparse tensor.
    SparseTensor {
        elem: Option<DataType>,
        shape: Option<Vec<ShapeDim>>,
    },
    /// A sequence of values of one type.
    Sequence(Option<Box<Type>>),
    /// A map from a scalar key type to values of one type.
    Map {
        key: Option<DataType>,
        value: Option<Box<Type>>,
    },
    /// An optional value.
    Optional(Option<Box<Type>>),
    /// An ONNX-ML opaque type.
    Opaque {
        domain: Option<String>,
        name: Option<String>,
    },
    /// A type proto with no kind set.
    Unset,
}

/// A value's type and its optional denotation.
#[derive(Clone, Debug, PartialEq)]
pub struct Type {
    pub kind: TypeKind,
    pub denotation: Option<String>,
}

impl Type {
    /// A dense tensor type with the given element type and dims.
    pub fn tensor(elem: DataType, dims: impl IntoIterator<Item = Dim>) -> Type {
        Type {
            kind: TypeKind::Tensor {
                elem: Some(elem),
                shape: Some(dims.into_iter().map(ShapeDim::from).collect()),
            },
            denotation: None,
        }
    }

    /// The element type of a (dense or sparse) tensor type.
    pub fn elem(&self) -> Option<DataType> {
        match &self.kind {
            TypeKind::Tensor { elem, .. } | TypeKind::SparseTensor { elem, .. } => *elem,
            _ => None,
        }
    }

    /// The dims of a tensor type whose rank is known.
    pub fn dims(&self) -> Option<Vec<Dim>> {
        match &self.kind {
            TypeKind::Tensor { shape: Some(s), .. }
            | TypeKind::SparseTensor { shape: Some(s), .. } => {
                Some(s.iter().map(|d| d.dim.clone()).collect())
            }
            _ => None,
        }
    }
}

/// What a file says about a value besides its name: type, doc string, metadata.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ValueInfo {
    pub ty: Option<Type>,
    pub doc_string: Option<String>,
    pub metadata_props: Vec<StringPair>,
}
