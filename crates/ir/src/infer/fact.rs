//! What inference knows about one value.

use super::poly::Poly;
use crate::dtype::DataType;
use crate::tensor::Tensor;
use crate::types::Dim;
use std::collections::BTreeMap;

/// Values of integer tensors up to this many elements are tracked (shape vectors, axes).
pub const MAX_TRACKED: usize = 64;

/// Element type, dims and (for small integer tensors) the values, each possibly unknown.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Fact {
    pub elem: Option<DataType>,
    /// None: rank unknown.
    pub dims: Option<Vec<Dim>>,
    /// The elements of a rank-0 or rank-1 integer tensor, symbolic where they come from a
    /// shape (`Shape(x)[0]` is `batch`).
    pub value: Option<Vec<Dim>>,
}

impl Fact {
    /// A tensor of `elem` with `dims`.
    pub fn tensor(elem: Option<DataType>, dims: Vec<Dim>) -> Fact {
        Fact {
            elem,
            dims: Some(dims),
            value: None,
        }
    }

    /// A tensor of `elem` whose rank is unknown.
    pub fn of_elem(elem: Option<DataType>) -> Fact {
        Fact {
            elem,
            dims: None,
            value: None,
        }
    }

    /// A rank-1 integer tensor holding `value` (rank 0 when `scalar`).
    pub fn shape_value(elem: DataType, value: Vec<Dim>, scalar: bool) -> Fact {
        let dims = if scalar {
            Vec::new()
        } else {
            vec![Dim::Known(value.len() as i64)]
        };
        Fact {
            elem: Some(elem),
            dims: Some(dims),
            value: Some(value),
        }
    }

    /// The fact of a constant tensor; its values when it is a small integer vector.
    pub fn of_tensor(t: &Tensor) -> Fact {
        let dims: Vec<Dim> = t.dims.iter().map(|d| Dim::Known(*d)).collect();
        let small = t.dims.len() <= 1 && t.element_count().is_ok_and(|n| n as usize <= MAX_TRACKED);
        let value = if small && matches!(t.dtype(), DataType::Int64 | DataType::Int32) {
            t.to_i64_vec()
                .ok()
                .map(|v| v.into_iter().map(Dim::Known).collect())
        } else {
            None
        };
        Fact {
            elem: Some(t.dtype()),
            dims: Some(dims),
            value,
        }
    }

    /// The rank, when known.
    pub fn rank(&self) -> Option<usize> {
        self.dims.as_ref().map(Vec::len)
    }

    /// The values as plain integers, when all are known.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.value.as_ref()?.iter().map(known).collect()
    }

    /// Number of elements as a polynomial, when every dim is known or symbolic.
    pub fn numel(&self) -> Option<Poly> {
        product(self.dims.as_ref()?)
    }

    /// True when the value is a scalar (rank 0).
    pub fn is_scalar(&self) -> bool {
        self.dims.as_ref().is_some_and(Vec::is_empty)
    }
}

/// The integer of a known dim.
pub fn known(d: &Dim) -> Option<i64> {
    match d {
        Dim::Known(n) => Some(*n),
        _ => None,
    }
}

/// The product of dims as a polynomial.
pub fn product(dims: &[Dim]) -> Option<Poly> {
    dims.iter()
        .try_fold(Poly::constant(1), |acc, d| acc.mul(&Poly::of_dim(d)?))
}

/// `d` with bound symbols replaced by their sizes.
pub fn bind_dim(d: &Dim, bind: &BTreeMap<String, i64>) -> Dim {
    if bind.is_empty() {
        return d.clone();
    }
    match Poly::of_dim(d).and_then(|p| p.substitute(&|s| bind.get(s).copied())) {
        Some(p) => p.to_dim(),
        None => d.clone(),
    }
}

/// Arithmetic on dims through polynomials; Unknown when either side is.
pub fn dim_op(a: &Dim, b: &Dim, op: impl Fn(&Poly, &Poly) -> Option<Poly>) -> Dim {
    match (Poly::of_dim(a), Poly::of_dim(b)) {
        (Some(x), Some(y)) => op(&x, &y).map_or(Dim::Unknown, |p| p.to_dim()),
        _ => Dim::Unknown,
    }
}
