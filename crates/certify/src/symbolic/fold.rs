//! The checker's reference arithmetic on constants: ops whose result every IEEE 754
//! runtime gives bit for bit (data movement: Transpose, Slice, Concat; `+ − × ÷ √`,
//! negation and absolute value, which are correctly rounded; exact casts), computed here with no code from the
//! passes. A constant folded by whittle is proved exact when this gives the same bytes.
//!
//! Float32 arithmetic is done in f64 and rounded once: for `+ − × ÷ √` that is the
//! correctly rounded f32 result (f64 carries more than 2·24 + 2 bits).

use super::terms::{Sym, Terms};
use super::{attr_i, attr_ints};
use bytes::Bytes;
use whittle_ir::{DataType, Node, Tensor};

/// Results past this many elements are not computed.
const MAX_ELEMENTS: usize = 1 << 25;

/// The one output of `node` on constant inputs, when every input is a constant the
/// checker holds and the op is one it computes exactly.
pub fn fold(terms: &Terms, node: &Node, ins: &[Option<&Sym>]) -> Option<Tensor> {
    if node.outputs().len() != 1 {
        return None;
    }
    let ts: Vec<Tensor> = ins
        .iter()
        .map(|s| terms.constant(s.as_ref()?))
        .collect::<Option<_>>()?;
    match (node.op(), ts.as_slice()) {
        ("Transpose", [x]) => transpose(node, x),
        ("Cast", [x]) => cast(x, attr_i(node, "to")? as i32),
        ("Add" | "Sub" | "Mul" | "Div", [a, b]) => binary(node.op(), a, b),
        ("Sqrt" | "Neg" | "Abs" | "Reciprocal", [x]) => unary(node.op(), x),
        ("Slice", [x, rest @ ..]) => slice(node, x, rest),
        ("Concat", xs) => concat(node, xs),
        _ => None,
    }
}

/// The integer elements of an optional input.
fn ints(t: Option<&Tensor>) -> Option<Vec<i64>> {
    t.map(|t| t.to_i64_vec().ok()).unwrap_or(None)
}

/// `Slice(x, starts, ends, axes, steps)` (inputs, or attributes before opset 10) by
/// picking each element's bytes.
fn slice(node: &Node, x: &Tensor, rest: &[Tensor]) -> Option<Tensor> {
    let dims = sizes(x)?;
    let arg = |name: &str, i: usize| attr_ints(node, name).or_else(|| ints(rest.get(i)));
    let (starts, ends) = (arg("starts", 0)?, arg("ends", 1)?);
    let axes = arg("axes", 2).unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = arg("steps", 3).unwrap_or_else(|| vec![1; starts.len()]);
    let mut picks: Vec<Vec<usize>> = dims.iter().map(|d| (0..*d).collect()).collect();
    for (k, s) in starts.iter().enumerate() {
        let a = super::axis(*axes.get(k)?, dims.len())?;
        let n = dims[a] as i64;
        picks[a] = super::shape_ops::slice_indices(n, *s, *ends.get(k)?, *steps.get(k)?)?;
    }
    let out_dims: Vec<usize> = picks.iter().map(Vec::len).collect();
    let n: usize = out_dims.iter().product();
    let width = (x.dtype().bit_width()? / 8) as usize;
    if n > MAX_ELEMENTS || width == 0 {
        return None;
    }
    let bytes = x.le_bytes().ok()?;
    let strides: Vec<usize> = (0..dims.len())
        .map(|k| dims[k + 1..].iter().product())
        .collect();
    let mut out = Vec::with_capacity(n * width);
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..n {
        let src: usize = (0..dims.len()).map(|k| picks[k][idx[k]] * strides[k]).sum();
        out.extend_from_slice(bytes.get(src * width..(src + 1) * width)?);
        step(&mut idx, &out_dims);
    }
    let dims = out_dims.iter().map(|d| *d as i64).collect();
    Some(Tensor::from_raw(x.dtype(), dims, Bytes::from(out)))
}

/// `Concat(xs, axis)` by joining each outer slice's bytes.
fn concat(node: &Node, xs: &[Tensor]) -> Option<Tensor> {
    let first = xs.first()?;
    let rank = first.dims.len();
    let a = super::axis(attr_i(node, "axis")?, rank)?;
    let width = (first.dtype().bit_width()? / 8) as usize;
    let same = |t: &Tensor| {
        t.dtype() == first.dtype()
            && t.dims.len() == rank
            && (0..rank).all(|k| k == a || t.dims[k] == first.dims[k])
    };
    if width == 0 || !xs.iter().all(same) {
        return None;
    }
    let outer: usize = sizes(first)?[..a].iter().product();
    let chunks: Vec<(Bytes, usize)> = xs
        .iter()
        .map(|t| {
            let d = sizes(t)?;
            Some((t.le_bytes().ok()?, d[a..].iter().product::<usize>() * width))
        })
        .collect::<Option<_>>()?;
    let total: usize = chunks.iter().map(|(b, _)| b.len()).sum();
    if total / width > MAX_ELEMENTS {
        return None;
    }
    let mut out = Vec::with_capacity(total);
    for o in 0..outer {
        for (b, len) in &chunks {
            out.extend_from_slice(b.get(o * len..(o + 1) * len)?);
        }
    }
    let mut dims = first.dims.clone();
    dims[a] = xs.iter().map(|t| t.dims[a]).sum();
    Some(Tensor::from_raw(first.dtype(), dims, Bytes::from(out)))
}

/// Dims as sizes.
fn sizes(t: &Tensor) -> Option<Vec<usize>> {
    t.dims.iter().map(|d| usize::try_from(*d).ok()).collect()
}

/// `Transpose(x, perm)` by moving each element's bytes.
fn transpose(node: &Node, x: &Tensor) -> Option<Tensor> {
    let dims = sizes(x)?;
    let perm: Vec<usize> = match attr_ints(node, "perm") {
        Some(p) => p
            .iter()
            .map(|a| usize::try_from(*a).ok())
            .collect::<Option<_>>()?,
        None => (0..dims.len()).rev().collect(),
    };
    let n: usize = dims.iter().product();
    let width = (x.dtype().bit_width()? / 8) as usize;
    if perm.len() != dims.len() || n > MAX_ELEMENTS || width == 0 {
        return None;
    }
    let bytes = x.le_bytes().ok()?;
    let strides: Vec<usize> = (0..dims.len())
        .map(|k| dims[k + 1..].iter().product())
        .collect();
    let out_dims: Vec<usize> = perm.iter().map(|p| dims[*p]).collect();
    let mut out = Vec::with_capacity(n * width);
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..n {
        let src: usize = perm.iter().zip(&idx).map(|(p, i)| i * strides[*p]).sum();
        out.extend_from_slice(bytes.get(src * width..(src + 1) * width)?);
        step(&mut idx, &out_dims);
    }
    let dims = out_dims.iter().map(|d| *d as i64).collect();
    Some(Tensor::from_raw(x.dtype(), dims, Bytes::from(out)))
}

/// The next index of an odometer over `dims`.
fn step(idx: &mut [usize], dims: &[usize]) {
    for k in (0..idx.len()).rev() {
        idx[k] += 1;
        if idx[k] < dims[k] {
            return;
        }
        idx[k] = 0;
    }
}

/// The elements of a float32 or float64 tensor, as f64.
fn floats(t: &Tensor) -> Option<Vec<f64>> {
    let b = t.le_bytes().ok()?;
    match t.dtype() {
        DataType::Float => Some(t.to_f32_vec().ok()?.into_iter().map(f64::from).collect()),
        DataType::Double => Some(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        _ => None,
    }
}

/// A float32 or float64 tensor of `values` (rounded once to f32 for float32).
fn float_tensor(dtype: DataType, dims: Vec<i64>, values: &[f64]) -> Option<Tensor> {
    let bytes: Vec<u8> = match dtype {
        DataType::Float => values
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect(),
        DataType::Double => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        _ => return None,
    };
    Some(Tensor::from_raw(dtype, dims, Bytes::from(bytes)))
}

/// `Cast` between float32 and float64, and from int32 or int64 to either (each value
/// rounded once to nearest, as IEEE conversion does).
fn cast(x: &Tensor, to: i32) -> Option<Tensor> {
    let to = DataType::from_code(to);
    let values: Vec<f64> = match x.dtype() {
        DataType::Float | DataType::Double => floats(x)?,
        DataType::Int32 | DataType::Int64 => {
            let v = x.to_i64_vec().ok()?;
            // Integers past 2^53 would be rounded twice (to f64, then to f32).
            if v.iter().any(|i| i.unsigned_abs() > 1 << 53) {
                return None;
            }
            v.into_iter().map(|i| i as f64).collect()
        }
        _ => return None,
    };
    float_tensor(to, x.dims.clone(), &values)
}

/// A correctly rounded unary op on float32 or float64.
fn unary(op: &str, x: &Tensor) -> Option<Tensor> {
    let f = |v: f64| match op {
        "Sqrt" => v.sqrt(),
        "Neg" => -v,
        "Abs" => v.abs(),
        _ => 1.0 / v,
    };
    let v: Vec<f64> = floats(x)?.into_iter().map(f).collect();
    float_tensor(x.dtype(), x.dims.clone(), &v)
}

/// `+ − × ÷` on two float32 or two float64 tensors, with numpy broadcasting.
fn binary(op: &str, a: &Tensor, b: &Tensor) -> Option<Tensor> {
    if a.dtype() != b.dtype() {
        return None;
    }
    let (da, db) = (sizes(a)?, sizes(b)?);
    let rank = da.len().max(db.len());
    let pad = |d: &[usize]| -> Vec<usize> {
        let mut p = vec![1; rank - d.len()];
        p.extend_from_slice(d);
        p
    };
    let (pa, pb) = (pad(&da), pad(&db));
    let dims: Vec<usize> = pa
        .iter()
        .zip(&pb)
        .map(|(x, y)| match (x, y) {
            (x, y) if x == y => Some(*x),
            (1, y) => Some(*y),
            (x, 1) => Some(*x),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let n: usize = dims.iter().product();
    if n > MAX_ELEMENTS {
        return None;
    }
    let (va, vb) = (floats(a)?, floats(b)?);
    let stride = |p: &[usize]| -> Vec<usize> {
        (0..rank)
            .map(|k| {
                if p[k] == 1 {
                    0
                } else {
                    p[k + 1..].iter().product()
                }
            })
            .collect()
    };
    let (sa, sb) = (stride(&pa), stride(&pb));
    let f = |x: f64, y: f64| match op {
        "Add" => x + y,
        "Sub" => x - y,
        "Mul" => x * y,
        _ => x / y,
    };
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        let ia: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
        let ib: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
        out.push(f(*va.get(ia)?, *vb.get(ib)?));
        step(&mut idx, &dims);
    }
    let dims = dims.iter().map(|d| *d as i64).collect();
    float_tensor(a.dtype(), dims, &out)
}
