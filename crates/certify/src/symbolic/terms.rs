//! Terms: what a value is, as an expression over the model's inputs and constants, built
//! so that equal terms are equal tensors for every input. A term is a leaf (an input, a
//! constant by digest), an integer tensor whose elements are known polynomials, a
//! reshape or transpose of another term, or a deterministic op applied to terms.
//!
//! Terms are hash-consed and kept in normal form by three exact identities:
//! - Reshape, Flatten, Squeeze and Unsqueeze keep the row-major order of the elements,
//!   so each is a reshape to its output shape, reshapes of reshapes are one, and a
//!   reshape to the shape a tensor has is the tensor;
//! - transposes compose (`Transpose(Transpose(x, p), q) = Transpose(x, r)`,
//!   `r[i] = p[q[i]]`), and the identity permutation is the tensor;
//! - an integer tensor whose elements are all known is that value, however computed.

use super::poly::Poly;
use std::collections::HashMap;
use whittle_ir::Tensor;

/// A term's id in [`Terms`].
pub type TermId = u32;

/// One term.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    /// A graph input (`in:NAME`) or a constant (`t:DTYPE:DIMS:SHA256`).
    Leaf(String),
    /// An integer tensor of known elements: element type, shape, row-major elements.
    Value(i32, Vec<Poly>, Vec<Poly>),
    /// The elements of a term (never itself a reshape) in row-major order, in a shape.
    Reshape(TermId, Vec<Poly>),
    /// A term (never itself a transpose) with its axes permuted.
    Transpose(TermId, Vec<usize>),
    /// A deterministic op (`domain|op`, canonical attributes) on terms, one output.
    App(String, Vec<String>, Vec<Option<TermId>>, usize),
    /// A value nothing else can equal (a random op, an op with subgraphs).
    Fresh(usize),
}

/// What the checker knows of a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sym {
    /// Element type code (0: unknown).
    pub dtype: i32,
    /// Dims, when the rank is known (None: that dim is unknown).
    pub shape: Option<Vec<Option<Poly>>>,
    /// The elements of an integer tensor of constant shape, when all are known.
    pub ints: Option<Vec<Poly>>,
    /// The term.
    pub term: TermId,
    /// The one value every element has, for a constant whose elements are all equal
    /// (`x·1`, `x + 0` are x).
    pub splat: Option<f64>,
}

impl Sym {
    /// The dims, when every one is known.
    pub fn dims(&self) -> Option<Vec<Poly>> {
        self.shape.as_ref()?.iter().cloned().collect()
    }

    /// The dims as numbers, when every one is a constant.
    pub fn const_dims(&self) -> Option<Vec<i64>> {
        self.dims()?.iter().map(Poly::as_const).collect()
    }

    /// The elements as numbers, when every one is a constant.
    pub fn const_ints(&self) -> Option<Vec<i64>> {
        self.ints.as_ref()?.iter().map(Poly::as_const).collect()
    }

    /// The rank, when known.
    pub fn rank(&self) -> Option<usize> {
        self.shape.as_ref().map(Vec::len)
    }
}

/// The hash-consed terms, with the dims of each term whose dims are all known.
#[derive(Default)]
pub struct Terms {
    ids: HashMap<Term, TermId>,
    terms: Vec<Term>,
    dims: Vec<Option<Vec<Poly>>>,
    /// Terms whose elements are all one value (constants; their reshapes and
    /// transposes).
    splats: HashMap<TermId, f64>,
    /// Constant leaves' tensors and digests (to compute folds from, and to keep a
    /// reshaped constant a constant).
    data: HashMap<TermId, (Tensor, String)>,
    fresh: usize,
}

impl Terms {
    /// The id of `t` (with dims `dims`, when known).
    pub fn intern(&mut self, t: Term, dims: Option<Vec<Poly>>) -> TermId {
        if let Some(id) = self.ids.get(&t) {
            return *id;
        }
        let id = self.terms.len() as TermId;
        self.terms.push(t.clone());
        self.dims.push(dims);
        self.ids.insert(t, id);
        id
    }

    /// Notes that every element of `id` is `v`.
    pub fn set_splat(&mut self, id: TermId, v: f64) {
        self.splats.insert(id, v);
    }

    /// The one value every element of `id` has, when known.
    pub fn splat(&self, id: TermId) -> Option<f64> {
        self.splats.get(&id).copied()
    }

    /// Notes that the leaf `id` is the constant `t`, whose digest is `sha`.
    pub fn set_data(&mut self, id: TermId, t: Tensor, sha: String) {
        self.data.insert(id, (t, sha));
    }

    /// The value of `s` when it is a constant the checker holds: a leaf's tensor, or
    /// the known elements of a small integer tensor.
    pub fn constant(&self, s: &Sym) -> Option<Tensor> {
        if let Some((t, _)) = self.data.get(&s.term) {
            return Some(t.clone());
        }
        let dims = s.const_dims()?;
        let v = s.const_ints()?;
        let bytes: Vec<u8> = match s.dtype {
            7 => v.iter().flat_map(|i| i.to_le_bytes()).collect(),
            6 => v
                .iter()
                .map(|i| i32::try_from(*i).ok())
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .flat_map(|i| i.to_le_bytes())
                .collect(),
            9 => v.iter().map(|i| u8::from(*i != 0)).collect(),
            _ => return None,
        };
        let dtype = whittle_ir::DataType::from_code(s.dtype);
        Some(Tensor::from_raw(dtype, dims, bytes::Bytes::from(bytes)))
    }

    /// A term equal to no other.
    pub fn fresh(&mut self) -> TermId {
        self.fresh += 1;
        self.intern(Term::Fresh(self.fresh), None)
    }

    /// The term `id`.
    pub fn get(&self, id: TermId) -> &Term {
        &self.terms[id as usize]
    }

    /// `x` reshaped to `dims` (exact: reshapes keep row-major order).
    pub fn reshape(&mut self, x: TermId, dims: Vec<Poly>) -> TermId {
        let base = match self.get(x) {
            Term::Reshape(b, _) => *b,
            _ => x,
        };
        if self.dims[base as usize].as_ref() == Some(&dims) {
            return base;
        }
        // A constant reshaped is the same bytes under other dims: the constant of those
        // dims, as a file would hold it.
        let consts: Option<Vec<i64>> = dims.iter().map(Poly::as_const).collect();
        if let (Some((t, sha)), Some(c)) = (self.data.get(&base).cloned(), consts) {
            let key = format!("t:{}:{c:?}:{sha}", t.dtype().code());
            let id = self.intern(Term::Leaf(key), Some(dims));
            let mut t = t;
            t.dims = c;
            self.set_data(id, t, sha);
            if let Some(v) = self.splat(base) {
                self.set_splat(id, v);
            }
            return id;
        }
        let id = self.intern(Term::Reshape(base, dims.clone()), Some(dims));
        if let Some(v) = self.splat(base) {
            self.set_splat(id, v);
        }
        id
    }

    /// `x` with its axes permuted by `perm` (output axis i is input axis perm[i]).
    pub fn transpose(&mut self, x: TermId, perm: Vec<usize>) -> TermId {
        let (base, perm) = match self.get(x) {
            Term::Transpose(b, p) => (*b, perm.iter().map(|q| p[*q]).collect::<Vec<_>>()),
            _ => (x, perm),
        };
        if perm.iter().enumerate().all(|(i, p)| i == *p) {
            return base;
        }
        let dims = self.dims[base as usize]
            .as_ref()
            .map(|d| perm.iter().map(|p| d[*p].clone()).collect());
        let id = self.intern(Term::Transpose(base, perm), dims);
        if let Some(v) = self.splat(base) {
            self.set_splat(id, v);
        }
        id
    }
}
