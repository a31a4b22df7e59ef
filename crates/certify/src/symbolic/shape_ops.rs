//! The checker's own semantics of the layout and shape ops: what their outputs' dims
//! are, and the elements of the integer tensors they compute, as polynomials in the
//! inputs' dims. Anything not certain is left unknown (None), never guessed.

use super::poly::Poly;
use super::terms::{Sym, Term, TermId, Terms};
use super::{Out, attr_i, attr_ints, axis, int_input};
use whittle_ir::Node;

/// `Shape(x)` (with `start`, `end`): its elements are x's dims.
pub fn shape(node: &Node, x: &Sym) -> Out {
    let Some(dims) = &x.shape else {
        return Out::int64(None, None);
    };
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(attr_i(node, "start").unwrap_or(0));
    let end = clamp(attr_i(node, "end").unwrap_or(r));
    let part = dims.get(start..end.max(start)).unwrap_or_default();
    let n = Poly::constant(part.len() as i64);
    Out::int64(Some(vec![Some(n)]), part.iter().cloned().collect())
}

/// `Size(x)`: the product of x's dims.
pub fn size(x: &Sym) -> Out {
    let n = x.dims().and_then(|d| Poly::product(&d));
    Out::int64(Some(Vec::new()), n.map(|n| vec![n]))
}

/// The dims a Reshape gives `x` for the target `t` (0 copies x's dim unless
/// `allowzero`, one -1 takes what is left).
pub fn reshape_dims(x: &Sym, t: &[Poly], allowzero: bool) -> Option<Vec<Option<Poly>>> {
    let xd = x.shape.as_ref();
    let mut out: Vec<Option<Poly>> = Vec::with_capacity(t.len());
    let mut infer_at = None;
    for (i, d) in t.iter().enumerate() {
        match d.as_const() {
            Some(0) if !allowzero => out.push(xd.and_then(|s| s.get(i).cloned().flatten())),
            Some(-1) if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(None);
            }
            Some(c) if c < 0 => return None,
            Some(_) => out.push(Some(d.clone())),
            // A symbolic size is at least 1 when its coefficients are not negative (open
            // dims are at least 1): never the 0 that copies or the -1 that infers.
            None if d.non_negative() => out.push(Some(d.clone())),
            None => out.push(None),
        }
    }
    if let Some(i) = infer_at {
        let known: Option<Vec<Poly>> = out
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, d)| d.clone())
            .collect();
        let total = x.dims().and_then(|d| Poly::product(&d));
        out[i] = match (total, known.and_then(|k| Poly::product(&k))) {
            (Some(total), Some(k)) => total.div_exact(&k),
            _ => None,
        };
    }
    Some(out)
}

/// `Reshape(x, t)`: a reshape to the resolved dims.
pub fn reshape(node: &Node, terms: &mut Terms, x: &Sym, t: Option<&Sym>) -> Out {
    let allowzero = attr_i(node, "allowzero").unwrap_or(0) != 0;
    let shape = match t.and_then(|t| t.ints.as_ref()) {
        Some(t) => reshape_dims(x, t, allowzero),
        None => unknown_dims(t),
    };
    Out::relaid(terms, x, shape)
}

/// Dims for a shape input whose elements are unknown but whose length is a constant:
/// that many unknown dims.
fn unknown_dims(shape: Option<&Sym>) -> Option<Vec<Option<Poly>>> {
    let d = shape?.const_dims()?;
    match d.as_slice() {
        [n] if (0..=64).contains(n) => Some(vec![None; *n as usize]),
        _ => None,
    }
}

/// `Flatten(x, axis)`: two dims, the products either side of `axis`.
pub fn flatten(node: &Node, terms: &mut Terms, x: &Sym) -> Out {
    let shape = x.dims().and_then(|d| {
        let r = d.len() as i64;
        let a = attr_i(node, "axis").unwrap_or(1);
        let a = if a < 0 { a + r } else { a };
        let a = usize::try_from(a).ok().filter(|a| *a <= d.len())?;
        Some(vec![Poly::product(&d[..a]), Poly::product(&d[a..])])
    });
    Out::relaid(terms, x, shape)
}

/// `Squeeze(x, axes)`: the named dims (which must be 1) dropped; without axes, every
/// dim that is 1, known only when every dim is a constant.
pub fn squeeze(node: &Node, terms: &mut Terms, x: &Sym, axes: Option<&Sym>) -> Out {
    let shape = x.shape.as_ref().and_then(|d| {
        let given = attr_ints(node, "axes").or_else(|| int_input(axes));
        let drop: Vec<usize> = match (given, axes.is_some()) {
            (Some(a), _) => a.iter().map(|a| axis(*a, d.len())).collect::<Option<_>>()?,
            // Axes given by a value the checker does not know.
            (None, true) => return None,
            (None, false) => {
                let c: Vec<i64> = d
                    .iter()
                    .map(|v| v.as_ref()?.as_const())
                    .collect::<Option<_>>()?;
                (0..c.len()).filter(|i| c[*i] == 1).collect()
            }
        };
        Some(
            d.iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, v)| v.clone())
                .collect(),
        )
    });
    Out::relaid(terms, x, shape)
}

/// `Unsqueeze(x, axes)`: ones inserted at `axes` of the output.
pub fn unsqueeze(node: &Node, terms: &mut Terms, x: &Sym, axes: Option<&Sym>) -> Out {
    let shape = x.shape.as_ref().and_then(|d| {
        let axes = attr_ints(node, "axes").or_else(|| int_input(axes))?;
        let rank = d.len() + axes.len();
        let at: Vec<usize> = axes.iter().map(|a| axis(*a, rank)).collect::<Option<_>>()?;
        let mut rest = d.iter();
        (0..rank)
            .map(|i| match at.contains(&i) {
                true => Some(Some(Poly::constant(1))),
                false => rest.next().cloned(),
            })
            .collect()
    });
    Out::relaid(terms, x, shape)
}

/// `Concat(xs, axis)`: dims of the first but the sum on `axis`; rank-1 integer
/// tensors' elements joined.
pub fn concat(node: &Node, xs: &[Option<&Sym>]) -> Out {
    let Some(xs) = xs.iter().copied().collect::<Option<Vec<&Sym>>>() else {
        return Out::unknown();
    };
    let Some(first) = xs.first() else {
        return Out::unknown();
    };
    let dtype = first.dtype;
    let shape = first.shape.as_ref().and_then(|d| {
        let a = axis(attr_i(node, "axis")?, d.len())?;
        let mut out = d.clone();
        let mut sum = Some(Poly::constant(0));
        for x in &xs {
            let dx = x.shape.as_ref().filter(|s| s.len() == d.len())?;
            sum = match (sum, &dx[a]) {
                (Some(s), Some(v)) => s.add(v),
                _ => None,
            };
            // Concat runs only when the other dims are equal, so any input's will do:
            // the least (constants first, then the earliest inputs' symbols).
            for (i, o) in out.iter_mut().enumerate() {
                if i != a && dx[i].is_some() && (o.is_none() || dx[i] < *o) {
                    *o = dx[i].clone();
                }
            }
        }
        out[a] = sum;
        Some(out)
    });
    let ints = (shape.as_ref().map(Vec::len) == Some(1))
        .then(|| {
            xs.iter()
                .map(|x| x.ints.clone())
                .collect::<Option<Vec<_>>>()
        })
        .flatten()
        .map(|v| v.concat());
    // One input with something on the axis (the others empty): Concat is that input.
    let axis_of = |x: &Sym| {
        let d = x.shape.as_ref()?;
        d[axis(attr_i(node, "axis")?, d.len())?].clone()
    };
    let full: Vec<&&Sym> = xs
        .iter()
        .filter(|x| axis_of(x).and_then(|d| d.as_const()) != Some(0))
        .collect();
    let term = (full.len() == 1 && shape == full[0].shape).then(|| full[0].term);
    Out {
        dtype,
        shape,
        ints,
        term,
    }
}

/// `Gather(data, indices, axis)`: dims `data[..a] + indices + data[a+1..]`; elements of a
/// rank-1 integer `data` at constant indices.
pub fn gather(node: &Node, data: &Sym, idx: Option<&Sym>) -> Out {
    let Some(idx) = idx else {
        return Out::unknown();
    };
    let shape = data.shape.as_ref().and_then(|d| {
        let a = axis(attr_i(node, "axis").unwrap_or(0), d.len())?;
        let mut out = d[..a].to_vec();
        out.extend(idx.shape.clone()?);
        out.extend(d[a + 1..].iter().cloned());
        Some(out)
    });
    let ints = (data.rank() == Some(1))
        .then(|| {
            let v = data.ints.as_ref()?;
            let n = v.len() as i64;
            idx.const_ints()?
                .iter()
                .map(|i| {
                    let i = if *i < 0 { i + n } else { *i };
                    v.get(usize::try_from(i).ok()?).cloned()
                })
                .collect::<Option<Vec<_>>>()
        })
        .flatten();
    Out {
        dtype: data.dtype,
        shape,
        ints,
        term: None,
    }
}

/// `Transpose(x, perm)` (default: the axes reversed).
pub fn transpose(node: &Node, terms: &mut Terms, x: &Sym) -> Out {
    let Some(rank) = x.rank() else {
        return Out::unknown().typed(x.dtype);
    };
    let perm = attr_ints(node, "perm").unwrap_or_else(|| (0..rank as i64).rev().collect());
    let perm: Option<Vec<usize>> = perm.iter().map(|p| usize::try_from(*p).ok()).collect();
    let Some(perm) = perm.filter(|p| {
        let mut s = p.clone();
        s.sort_unstable();
        s == (0..rank).collect::<Vec<_>>()
    }) else {
        return Out::unknown().typed(x.dtype);
    };
    let d = x
        .shape
        .as_ref()
        .map(|d| perm.iter().map(|p| d[*p].clone()).collect());
    Out {
        dtype: x.dtype,
        shape: d,
        ints: (rank <= 1).then(|| x.ints.clone()).flatten(),
        term: Some(terms.transpose(x.term, perm)),
    }
}

/// `Expand(x, shape)`: the broadcast of x's dims with `shape`; x itself when that is
/// x's own dims.
pub fn expand(x: &Sym, target: Option<&Sym>) -> Out {
    let t: Option<Vec<Option<Poly>>> = match target.and_then(|t| t.ints.clone()) {
        Some(t) => Some(t.into_iter().map(Some).collect()),
        None => unknown_dims(target),
    };
    let shape = match (&x.shape, t) {
        (Some(a), Some(b)) => super::arith::broadcast(&[a, &b]),
        _ => None,
    };
    let same = shape.is_some() && shape == x.shape && x.dims().is_some();
    Out {
        dtype: x.dtype,
        ints: same.then(|| x.ints.clone()).flatten(),
        term: same.then_some(x.term),
        shape,
    }
}

/// `Slice(x, starts, ends, axes, steps)` (inputs, or attributes before opset 10). The
/// rank is kept; a sliced dim is known when its bounds are constants, or when the slice
/// takes all of it (`0 : n` with n the dim itself, or past the end).
pub fn slice(node: &Node, terms: &mut Terms, x: &Sym, ins: &[Option<&Sym>]) -> Out {
    let Some(d) = x.shape.as_ref() else {
        return Out::unknown().typed(x.dtype);
    };
    let arg = |attr: &str, i: usize| -> Option<Vec<Poly>> {
        let given = attr_ints(node, attr).map(|v| v.into_iter().map(Poly::constant).collect());
        given.or_else(|| ins.get(i).copied().flatten()?.ints.clone())
    };
    let (starts, ends) = (arg("starts", 1), arg("ends", 2));
    let n = starts.as_ref().map(Vec::len);
    let axes_given = node.attr("axes").is_some() || ins.get(3).copied().flatten().is_some();
    let axes = match arg("axes", 3) {
        Some(a) => a.iter().map(Poly::as_const).collect::<Option<Vec<_>>>(),
        None if axes_given => None,
        None => n.map(|n| (0..n as i64).collect()),
    };
    let steps = match arg("steps", 4) {
        Some(v) => Some(v),
        None if ins.get(4).copied().flatten().is_some() => None,
        None => n.map(|n| vec![Poly::constant(1); n]),
    };
    let (Some(starts), Some(ends), Some(axes), Some(steps)) = (starts, ends, axes, steps) else {
        return Out::float(x.dtype, Some(vec![None; d.len()]));
    };
    if [ends.len(), axes.len(), steps.len()]
        .iter()
        .any(|l| *l != starts.len())
    {
        return Out::unknown().typed(x.dtype);
    }
    let mut shape = d.clone();
    let mut full = true;
    let mut picks: Vec<Vec<usize>> = Vec::new();
    let mut spec: Vec<(usize, String)> = Vec::new();
    for k in 0..starts.len() {
        let Some(a) = axis(axes[k], d.len()) else {
            return Out::unknown().typed(x.dtype);
        };
        let (s, e, st) = (starts[k].as_const(), &ends[k], steps[k].as_const());
        if slices_whole(d[a].as_ref(), s, e, st) {
            continue;
        }
        full = false;
        let dim = d[a].as_ref().and_then(Poly::as_const);
        spec.push((a, slice_spec(dim, &starts[k], e, &steps[k])));
        let ix = match (dim, s, e.as_const(), st) {
            (Some(n), Some(s), Some(e), Some(st)) => slice_indices(n, s, e, st),
            _ => None,
        };
        shape[a] = ix.as_ref().map(|ix| Poly::constant(ix.len() as i64));
        picks.extend(ix);
    }
    let ints = (d.len() == 1 && !full)
        .then(|| {
            let v = x.ints.as_ref()?;
            picks
                .first()?
                .iter()
                .map(|i| v.get(*i).cloned())
                .collect::<Option<Vec<_>>>()
        })
        .flatten();
    Out {
        dtype: x.dtype,
        shape: Some(shape),
        ints: if full { x.ints.clone() } else { ints },
        term: Some(slice_term(terms, x.term, full, spec)),
    }
}

/// A Slice's term: x itself when it takes everything, else the canonical Slice of its
/// `spec` (axis, text) axes, a Slice of a canonical Slice composed into one.
fn slice_term(terms: &mut Terms, x: TermId, full: bool, mut spec: Vec<(usize, String)>) -> TermId {
    if full {
        return x;
    }
    spec.sort();
    let spec: Vec<String> = spec.into_iter().map(|(a, t)| format!("{a}:{t}")).collect();
    let (base, spec) = match terms.get(x) {
        Term::App(op, inner, ins, 0) if op == "Slice#canonical" && ins.len() == 1 => {
            match (ins[0], compose_slices(inner, &spec)) {
                (Some(b), Some(s)) => (b, s),
                _ => (x, spec),
            }
        }
        _ => (x, spec),
    };
    terms.intern(
        Term::App("Slice#canonical".into(), spec, vec![Some(base)], 0),
        None,
    )
}

/// A Slice of a Slice as one, when every axis either has steps of 1 and constant
/// non-negative bounds: the outer `[c : d]` of the inner `[a : b]` takes `[a + c :
/// min(b, a + d)]` (the outer's bounds are clamped to the inner's length, which is
/// `min(b, n) − a`). Specs are `axis:start:end:step`, end a number or `end`.
fn compose_slices(inner: &[String], outer: &[String]) -> Option<Vec<String>> {
    type Axis = (usize, i64, Option<i64>);
    let parse = |t: &String| -> Option<Axis> {
        let p: Vec<&str> = t.split(':').collect();
        let [a, s, e, "1"] = p.as_slice() else {
            return None;
        };
        let s: i64 = s.parse().ok().filter(|s| *s >= 0)?;
        let e = match *e {
            "end" => None,
            e => Some(e.parse().ok().filter(|e: &i64| *e >= 0)?),
        };
        Some((a.parse().ok()?, s, e))
    };
    let inner: Vec<Axis> = inner.iter().map(parse).collect::<Option<_>>()?;
    let outer: Vec<Axis> = outer.iter().map(parse).collect::<Option<_>>()?;
    let mut merged: std::collections::BTreeMap<usize, (i64, Option<i64>)> =
        inner.iter().map(|(a, s, e)| (*a, (*s, *e))).collect();
    for (a, c, d) in outer {
        let (s, e) = merged.get(&a).copied().unwrap_or((0, None));
        let end = match (e, d) {
            (e, None) => e,
            (None, Some(d)) => Some(s.checked_add(d)?),
            (Some(b), Some(d)) => Some(b.min(s.checked_add(d)?)),
        };
        merged.insert(a, (s.checked_add(c)?, end));
    }
    Some(
        merged
            .into_iter()
            .map(|(a, (s, e))| {
                format!(
                    "{a}:{s}:{}:1",
                    e.map_or("end".to_string(), |e| e.to_string())
                )
            })
            .collect(),
    )
}

/// One axis of a Slice in a canonical text, the same for every way of writing it: a
/// negative start or end counted from a constant dim, an end past the dim as `end`.
fn slice_spec(dim: Option<i64>, s: &Poly, e: &Poly, st: &Poly) -> String {
    let positive = st.as_const().is_some_and(|st| st > 0);
    let from_end = |v: i64| match dim {
        Some(n) if positive && v < 0 => (v + n).max(0).to_string(),
        _ => v.to_string(),
    };
    let start = s.as_const().map_or_else(|| s.to_string(), from_end);
    let end = match (e.as_const(), dim) {
        (Some(e), _) if positive && e >= i64::MAX / 2 => "end".to_string(),
        (Some(e), Some(n)) if positive && e >= n => "end".to_string(),
        (Some(e), _) => from_end(e),
        (None, _) => e.to_string(),
    };
    format!("{start}:{end}:{st}")
}

/// Whether `[s : e : st]` takes all of a dim `dim`.
fn slices_whole(dim: Option<&Poly>, s: Option<i64>, e: &Poly, st: Option<i64>) -> bool {
    let n = dim.and_then(Poly::as_const);
    let from_start = s == Some(0) || matches!((s, n), (Some(s), Some(n)) if s <= -n);
    let to_end = e
        .as_const()
        .is_some_and(|e| e >= i64::MAX / 2 || n.is_some_and(|n| e >= n))
        || dim == Some(e);
    st == Some(1) && from_start && to_end
}

/// The indices `[s:e:st]` picks of a dim of size `n` (ONNX clamps like Python).
pub(crate) fn slice_indices(n: i64, s: i64, e: i64, st: i64) -> Option<Vec<usize>> {
    if st == 0 || n < 0 {
        return None;
    }
    if n == 0 {
        return Some(Vec::new());
    }
    let norm = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    let (s, e) = (norm(s), norm(e));
    let mut out = Vec::new();
    if st > 0 {
        let (mut i, e) = (s.clamp(0, n), e.clamp(0, n));
        while i < e {
            out.push(i as usize);
            i += st;
        }
    } else {
        let (mut i, e) = (s.clamp(0, n - 1), e.clamp(-1, n - 1));
        while i > e {
            out.push(i as usize);
            i += st;
        }
    }
    Some(out)
}

/// `ConstantOfShape(shape)`: dims from the input's elements.
pub fn constant_of_shape(node: &Node, shape: Option<&Sym>) -> Out {
    let value = node.attr("value").and_then(|a| a.t.as_deref());
    let dtype = value.map_or(1, |t| t.dtype().code());
    let dims: Option<Vec<Option<Poly>>> = match shape.and_then(|s| s.ints.clone()) {
        Some(v) => Some(v.into_iter().map(Some).collect()),
        None => unknown_dims(shape),
    };
    let fill = value
        .and_then(|t| t.to_i64_vec().ok())
        .filter(|v| v.len() == 1);
    let ints = match (&dims, fill, matches!(dtype, 6 | 7)) {
        (Some(d), Some(f), true) => {
            let n: Option<i64> = d.iter().map(|d| d.as_ref()?.as_const()).product();
            n.filter(|n| (0..=4096).contains(n))
                .map(|n| vec![Poly::constant(f[0]); n as usize])
        }
        _ => None,
    };
    Out {
        dtype,
        shape: dims,
        ints,
        term: None,
    }
}

/// `Range(start, limit, delta)` of constant integer scalars.
pub fn range(ins: &[Option<&Sym>]) -> Out {
    let scalar = |i: usize| -> Option<i64> {
        let v = ins.get(i).copied().flatten()?.const_ints()?;
        (v.len() == 1).then(|| v[0])
    };
    let dtype = ins.first().copied().flatten().map_or(0, |s| s.dtype);
    match (scalar(0), scalar(1), scalar(2)) {
        (Some(s), Some(l), Some(d)) if d != 0 && matches!(dtype, 6 | 7) => {
            let n = ((l - s) as f64 / d as f64).ceil().max(0.0) as i64;
            let v: Vec<Poly> = (0..n.min(4097))
                .map(|k| Poly::constant(s + k * d))
                .collect();
            let ints = (n <= 4096).then_some(v);
            Out {
                dtype,
                shape: Some(vec![Some(Poly::constant(n))]),
                ints,
                term: None,
            }
        }
        _ => {
            // A step of 1 from `start` to `limit` gives limit - start elements when
            // that is non-negative for every input (every coefficient is).
            let ints = |i: usize| {
                ins.get(i)
                    .copied()
                    .flatten()?
                    .ints
                    .clone()
                    .filter(|v| v.len() == 1)
            };
            let n = match (ints(0), ints(1), scalar(2)) {
                (Some(s), Some(l), Some(1)) => l[0].sub(&s[0]).filter(Poly::non_negative),
                _ => None,
            };
            Out {
                dtype,
                shape: Some(vec![n]),
                ints: None,
                term: None,
            }
        }
    }
}
