//! Proof by symbolic evaluation: a region is proved when, evaluated as terms over the
//! model's inputs and constants, what it hands on after the rewrite is the same term as
//! before, for every output. Terms are exact (see [`terms`]), and dims and shape values
//! are polynomials in the inputs' dims ([`poly`]), so equal terms are equal tensors for
//! every input the model accepts.
//!
//! This covers the rules whose side conditions are about shapes: a Reshape whose target
//! was computed from `Shape` replaced by a constant, a no-op Cast, Expand, Slice or
//! Reshape removed, Unsqueeze and Reshape chains merged, shape values folded. The
//! checker has its own semantics of the ops (`shape_ops`, `arith`, `nn`): nothing here
//! is whittle's inference.
//!
//! Each dim of a graph input the file leaves open is its own symbol, even where two
//! inputs name the same `dim_param`: the checker assumes nothing a runtime does not
//! enforce, but one thing: an open dim is at least 1 (no empty tensors), so a product of
//! dims is never the 0 that a Reshape target reads as "copy".

pub mod arith;
pub mod fold;
pub mod nn;
pub mod poly;
pub mod shape_ops;
pub mod state;
pub mod terms;

mod eval;

pub use eval::{Inits, Prover};

use poly::Poly;
use terms::{Sym, TermId, Terms};
use whittle_ir::Node;

/// What an op's semantics give for one output, before it becomes a [`Sym`].
#[derive(Clone, Debug, Default)]
pub struct Out {
    pub dtype: i32,
    pub shape: Option<Vec<Option<Poly>>>,
    pub ints: Option<Vec<Poly>>,
    /// The term, when the op is an identity on some term (a no-op, a reshape).
    pub term: Option<TermId>,
}

impl Out {
    /// Nothing known.
    pub fn unknown() -> Out {
        Out::default()
    }

    /// With element type `dtype`.
    pub fn typed(mut self, dtype: i32) -> Out {
        self.dtype = dtype;
        self
    }

    /// An int64 tensor.
    pub fn int64(shape: Option<Vec<Option<Poly>>>, ints: Option<Vec<Poly>>) -> Out {
        Out {
            dtype: 7,
            shape,
            ints,
            term: None,
        }
    }

    /// A tensor of `dtype` whose elements are not followed.
    pub fn float(dtype: i32, shape: Option<Vec<Option<Poly>>>) -> Out {
        Out {
            dtype,
            shape,
            ints: None,
            term: None,
        }
    }

    /// `x`'s elements in row-major order, in `shape` (Reshape, Flatten, Squeeze,
    /// Unsqueeze): the reshape term when every dim is known.
    pub fn relaid(terms: &mut Terms, x: &Sym, shape: Option<Vec<Option<Poly>>>) -> Out {
        let dims: Option<Vec<Poly>> = shape.as_ref().and_then(|s| s.iter().cloned().collect());
        Out {
            dtype: x.dtype,
            ints: x.ints.clone(),
            term: dims.map(|d| terms.reshape(x.term, d)),
            shape,
        }
    }
}

/// An integer attribute.
pub fn attr_i(node: &Node, name: &str) -> Option<i64> {
    node.attr(name)?.i
}

/// An integer-list attribute.
pub fn attr_ints(node: &Node, name: &str) -> Option<Vec<i64>> {
    Some(node.attr(name)?.ints.to_vec())
}

/// The constant elements of an integer input.
pub fn int_input(s: Option<&Sym>) -> Option<Vec<i64>> {
    s?.const_ints()
}

/// Axis `a` (negative from the end) of a rank-`rank` tensor.
pub fn axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}
