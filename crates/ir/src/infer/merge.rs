//! Combining what a file declares with what inference derives.

use super::fact::Fact;
use crate::dtype::DataType;
use crate::types::{Dim, ShapeDim, Type, TypeKind};

/// The union of two facts about one value. Known beats symbolic beats unknown; between
/// two symbols the declared name stays. Two different known sizes (or ranks, or element
/// types) are reported through `warn` and the inferred one is kept.
pub fn merge(declared: Fact, inferred: Fact, warn: &mut dyn FnMut(String)) -> Fact {
    let elem = match (declared.elem, inferred.elem) {
        (Some(d), Some(i)) if d != i => {
            warn(format!("is declared {d} but computes {i}"));
            Some(i)
        }
        (d, i) => i.or(d),
    };
    let dims = match (declared.dims, inferred.dims) {
        (Some(d), Some(i)) if d.len() != i.len() => {
            warn(format!(
                "is declared with rank {} but computes rank {}",
                d.len(),
                i.len()
            ));
            Some(i)
        }
        (Some(d), Some(i)) => Some(
            d.iter()
                .zip(&i)
                .enumerate()
                .map(|(k, (d, i))| merge_dim(d, i, k, warn))
                .collect(),
        ),
        (d, i) => i.or(d),
    };
    Fact {
        elem,
        dims,
        value: inferred.value,
    }
}

fn merge_dim(d: &Dim, i: &Dim, axis: usize, warn: &mut dyn FnMut(String)) -> Dim {
    match (d, i) {
        (Dim::Known(a), Dim::Known(b)) if a != b => {
            warn(format!("dim {axis} is declared {a} but computes {b}"));
            i.clone()
        }
        (Dim::Known(_), _) => d.clone(),
        (_, Dim::Known(_)) => i.clone(),
        (Dim::Param(_), _) => d.clone(),
        (Dim::Unknown, _) => i.clone(),
    }
}

/// Makes `ty` a tensor type with `elem` and `dims` where they are known, keeping dim
/// denotations and any part of the old type that the new one does not know. Non-tensor
/// types are left alone.
pub fn set_tensor(ty: &mut Type, elem: Option<DataType>, dims: Option<&[Dim]>) {
    let (old_elem, old_shape) = match &ty.kind {
        TypeKind::Tensor { elem, shape } => (*elem, shape.clone()),
        TypeKind::Unset => (None, None),
        _ => return,
    };
    let shape = match (dims, old_shape) {
        (Some(new), Some(old)) if old.len() == new.len() => Some(
            old.into_iter()
                .zip(new)
                .map(|(o, n)| ShapeDim {
                    written: o.written.filter(|_| *n == Dim::Unknown),
                    dim: n.clone(),
                    denotation: o.denotation,
                })
                .collect(),
        ),
        (Some(new), _) => Some(new.iter().cloned().map(ShapeDim::from).collect()),
        (None, old) => old,
    };
    ty.kind = TypeKind::Tensor {
        elem: elem.or(old_elem),
        shape,
    };
}
