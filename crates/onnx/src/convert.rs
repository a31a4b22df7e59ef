//! Field-by-field conversions between prost messages and IR types that need no context
//! (types, metadata, opsets, opaque messages).

use crate::proto;
use bytes::Bytes;
use prost::Message;
use whittle_ir::{DataType, Dim, Opaque, OpsetImport, ShapeDim, StringPair, Type, TypeKind};

pub fn pairs_in(v: Vec<proto::StringStringEntryProto>) -> Vec<StringPair> {
    v.into_iter()
        .map(|p| StringPair {
            key: p.key,
            value: p.value,
        })
        .collect()
}

pub fn pairs_out(v: &[StringPair]) -> Vec<proto::StringStringEntryProto> {
    v.iter()
        .map(|p| proto::StringStringEntryProto {
            key: p.key.clone(),
            value: p.value.clone(),
        })
        .collect()
}

pub fn opsets_in(v: Vec<proto::OperatorSetIdProto>) -> Vec<OpsetImport> {
    v.into_iter()
        .map(|o| OpsetImport {
            domain: o.domain,
            version: o.version,
        })
        .collect()
}

pub fn opsets_out(v: &[OpsetImport]) -> Vec<proto::OperatorSetIdProto> {
    v.iter()
        .map(|o| proto::OperatorSetIdProto {
            domain: o.domain.clone(),
            version: o.version,
        })
        .collect()
}

/// Keeps a message the IR does not interpret, encoded.
pub fn opaque_in<M: Message>(m: &M) -> Opaque {
    Opaque(Bytes::from(m.encode_to_vec()))
}

/// Decodes a message kept by [`opaque_in`].
pub fn opaque_out<M: Message + Default>(o: &Opaque) -> Result<M, prost::DecodeError> {
    M::decode(o.0.clone())
}

fn shape_in(s: proto::TensorShapeProto) -> Vec<ShapeDim> {
    use proto::tensor_shape_proto::dimension::Value;
    s.dim
        .into_iter()
        .map(|d| {
            let (dim, written) = match d.value {
                // A negative size, or the symbol "?", means "dynamic" to the converters
                // that write them.
                Some(Value::DimValue(n)) if n < 0 => (Dim::Unknown, Some(Dim::Known(n))),
                Some(Value::DimValue(n)) => (Dim::Known(n), None),
                Some(Value::DimParam(p)) if p == "?" => (Dim::Unknown, Some(Dim::Param(p))),
                Some(Value::DimParam(p)) => (Dim::Param(p), None),
                None => (Dim::Unknown, None),
            };
            ShapeDim {
                dim,
                denotation: d.denotation,
                written,
            }
        })
        .collect()
}

fn shape_out(s: &[ShapeDim]) -> proto::TensorShapeProto {
    use proto::tensor_shape_proto::{Dimension, dimension::Value};
    proto::TensorShapeProto {
        dim: s
            .iter()
            .map(|d| Dimension {
                value: match &d.dim {
                    Dim::Known(n) => Some(Value::DimValue(*n)),
                    Dim::Param(p) => Some(Value::DimParam(p.clone())),
                    Dim::Unknown => match &d.written {
                        Some(Dim::Known(n)) => Some(Value::DimValue(*n)),
                        Some(Dim::Param(p)) => Some(Value::DimParam(p.clone())),
                        _ => None,
                    },
                },
                denotation: d.denotation.clone(),
            })
            .collect(),
    }
}

fn elem_in(code: Option<i32>) -> Option<DataType> {
    code.map(DataType::from_code)
}

fn elem_out(t: Option<DataType>) -> Option<i32> {
    t.map(DataType::code)
}

fn boxed_in(t: Option<Box<proto::TypeProto>>) -> Option<Box<Type>> {
    t.map(|t| Box::new(type_in(*t)))
}

fn boxed_out(t: &Option<Box<Type>>) -> Option<Box<proto::TypeProto>> {
    t.as_ref().map(|t| Box::new(type_out(t)))
}

pub fn type_in(t: proto::TypeProto) -> Type {
    use proto::type_proto::Value;
    let kind = match t.value {
        Some(Value::TensorType(x)) => TypeKind::Tensor {
            elem: elem_in(x.elem_type),
            shape: x.shape.map(shape_in),
        },
        Some(Value::SparseTensorType(x)) => TypeKind::SparseTensor {
            elem: elem_in(x.elem_type),
            shape: x.shape.map(shape_in),
        },
        Some(Value::SequenceType(x)) => TypeKind::Sequence(boxed_in(x.elem_type)),
        Some(Value::MapType(x)) => TypeKind::Map {
            key: elem_in(x.key_type),
            value: boxed_in(x.value_type),
        },
        Some(Value::OptionalType(x)) => TypeKind::Optional(boxed_in(x.elem_type)),
        Some(Value::OpaqueType(x)) => TypeKind::Opaque {
            domain: x.domain,
            name: x.name,
        },
        None => TypeKind::Unset,
    };
    Type {
        kind,
        denotation: t.denotation,
    }
}

pub fn type_out(t: &Type) -> proto::TypeProto {
    use proto::type_proto::{self as tp, Value};
    let value = match &t.kind {
        TypeKind::Tensor { elem, shape } => Some(Value::TensorType(tp::Tensor {
            elem_type: elem_out(*elem),
            shape: shape.as_deref().map(shape_out),
        })),
        TypeKind::SparseTensor { elem, shape } => Some(Value::SparseTensorType(tp::SparseTensor {
            elem_type: elem_out(*elem),
            shape: shape.as_deref().map(shape_out),
        })),
        TypeKind::Sequence(e) => Some(Value::SequenceType(Box::new(tp::Sequence {
            elem_type: boxed_out(e),
        }))),
        TypeKind::Map { key, value } => Some(Value::MapType(Box::new(tp::Map {
            key_type: elem_out(*key),
            value_type: boxed_out(value),
        }))),
        TypeKind::Optional(e) => Some(Value::OptionalType(Box::new(tp::Optional {
            elem_type: boxed_out(e),
        }))),
        TypeKind::Opaque { domain, name } => Some(Value::OpaqueType(tp::Opaque {
            domain: domain.clone(),
            name: name.clone(),
        })),
        TypeKind::Unset => None,
    };
    proto::TypeProto {
        value,
        denotation: t.denotation.clone(),
    }
}
