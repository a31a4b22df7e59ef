//! Ops that select, join or resize along axes: Concat, Split, Slice, Gather,
//! GatherElements, GatherND, Pad, TopK, OneHot, Resize, Upsample, GridSample.

use crate::dtype::DataType;
use crate::infer::ctx::{Ctx, RuleResult};
use crate::infer::fact::{Fact, MAX_TRACKED, dim_op};
use crate::infer::poly::Poly;
use crate::types::Dim;

/// The rule for `op`, if this family has one.
pub fn rule(op: &str, cx: &mut Ctx) -> Option<RuleResult> {
    Some(match op {
        "Concat" => concat(cx),
        "Split" => split(cx),
        "Slice" => slice(cx),
        "Gather" => gather(cx),
        "GatherElements" => Ok(vec![Fact {
            elem: cx.elem(0),
            dims: cx.dims(1).map(<[Dim]>::to_vec),
            value: None,
        }]),
        "GatherND" => gather_nd(cx),
        "Pad" => pad(cx),
        "TopK" => topk(cx),
        "OneHot" => one_hot(cx),
        "Resize" | "Upsample" => resize(op, cx),
        "GridSample" => grid_sample(cx),
        _ => return None,
    })
}

fn concat(cx: &mut Ctx) -> RuleResult {
    let elem = (0..cx.n_inputs()).find_map(|i| cx.elem(i));
    let all: Option<Vec<Vec<Dim>>> = (0..cx.n_inputs())
        .map(|i| cx.dims(i).map(<[Dim]>::to_vec))
        .collect();
    let Some(all) = all.filter(|a| !a.is_empty()) else {
        let r = (0..cx.n_inputs()).find_map(|i| cx.dims(i).map(<[Dim]>::len));
        return Ok(vec![match r {
            Some(r) => Fact::tensor(elem, vec![Dim::Unknown; r]),
            None => Fact::of_elem(elem),
        }]);
    };
    let r = all[0].len();
    if all.iter().any(|d| d.len() != r) {
        return Err("inputs of different ranks".into());
    }
    let axis = cx.axis(cx.int("axis", 0), r)?;
    let mut out = all[0].clone();
    for d in &all[1..] {
        for (k, (o, x)) in out.iter_mut().zip(d).enumerate() {
            if k == axis {
                *o = dim_op(o, x, Poly::add);
            } else if *o == Dim::Unknown
                || (matches!(o, Dim::Param(_)) && matches!(x, Dim::Known(_)))
            {
                *o = x.clone();
            }
        }
    }
    let mut f = Fact::tensor(elem, out);
    if r == 1 {
        let vals: Option<Vec<Dim>> = (0..cx.n_inputs())
            .map(|i| cx.value(i).map(<[Dim]>::to_vec))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat());
        f.value = vals.filter(|v| v.len() <= MAX_TRACKED);
    }
    Ok(vec![f])
}

fn split(cx: &mut Ctx) -> RuleResult {
    let n = cx.n_outputs();
    let elem = cx.elem(0);
    let Some(dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem); n]);
    };
    let axis = cx.axis(cx.int("axis", 0), dims.len())?;
    let sizes: Option<Vec<Dim>> = if cx.opset >= 13 && cx.has_input(1) {
        cx.ints(1).map(|v| v.into_iter().map(Dim::Known).collect())
    } else if let Some(s) = cx.ints_attr("split").filter(|s| !s.is_empty()) {
        Some(s.into_iter().map(Dim::Known).collect())
    } else {
        even_split(&dims[axis], n, cx.attr("num_outputs").is_some())
    };
    let sizes = sizes.unwrap_or_else(|| vec![Dim::Unknown; n]);
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut d = dims.clone();
            d[axis] = s;
            Fact::tensor(elem, d)
        })
        .collect())
}

/// Sizes of `n` equal parts (the last smaller when `uneven` allows it).
fn even_split(d: &Dim, n: usize, uneven: bool) -> Option<Vec<Dim>> {
    let n = n as i64;
    if let Dim::Known(total) = d {
        let each = if uneven {
            (total + n - 1) / n
        } else {
            total / n
        };
        let last = total - each * (n - 1);
        let mut v = vec![Dim::Known(each); n as usize - 1];
        v.push(Dim::Known(last));
        return Some(v);
    }
    let each = Poly::of_dim(d)?.div_exact(&Poly::constant(n))?;
    Some(vec![each.to_dim(); n as usize])
}

/// Per-axis slicing; symbolic dims survive the common `0:INT_MAX`, `k:`, `:-k` forms.
fn slice(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let Some(dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let r = dims.len();
    let params = if cx.opset < 10 {
        let s = cx.ints_attr("starts");
        let e = cx.ints_attr("ends");
        let a = cx.ints_attr("axes");
        s.zip(e).map(|(s, e)| (s, e, a, None))
    } else {
        let a = if cx.has_input(3) {
            cx.ints(3).map(Some)
        } else {
            Some(None)
        };
        let st = if cx.has_input(4) {
            cx.ints(4).map(Some)
        } else {
            Some(None)
        };
        match (cx.ints(1), cx.ints(2), a, st) {
            (Some(s), Some(e), Some(a), Some(st)) => Some((s, e, a, st)),
            _ => None,
        }
    };
    let Some((starts, ends, axes, steps)) = params else {
        return Ok(vec![Fact::tensor(elem, unknown_along(cx, &dims))]);
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps differ in length".into());
    }
    let mut out = dims.clone();
    for k in 0..starts.len() {
        let a = cx.axis(axes[k], r)?;
        if steps[k] == 0 {
            return Err("slice step 0".into());
        }
        out[a] = sliced(&dims[a], starts[k], ends[k], steps[k]);
    }
    let mut f = Fact::tensor(elem, out);
    if let (Some(v), 1) = (cx.value(0), r)
        && let (Some(Dim::Known(_)), Some(a)) = (dims.first(), axes.first())
        && (*a == 0 || *a == -1)
    {
        let n = v.len() as i64;
        let (s, e) = (
            clamp_idx(starts[0], n, steps[0]),
            clamp_idx(ends[0], n, steps[0]),
        );
        let idx: Vec<usize> = if steps[0] > 0 {
            (s..e)
                .step_by(steps[0] as usize)
                .map(|i| i as usize)
                .collect()
        } else {
            let mut i = s;
            let mut acc = Vec::new();
            while i > e {
                acc.push(i as usize);
                i += steps[0];
            }
            acc
        };
        f.value = idx.into_iter().map(|i| v.get(i).cloned()).collect();
    }
    Ok(vec![f])
}

/// Dims where the sliced axes (if the axes input is known) become unknown.
fn unknown_along(cx: &Ctx, dims: &[Dim]) -> Vec<Dim> {
    match cx.ints(3) {
        Some(axes) if cx.opset >= 10 => {
            let mut out = dims.to_vec();
            for a in axes {
                if let Ok(a) = cx.axis(a, dims.len()) {
                    out[a] = Dim::Unknown;
                }
            }
            out
        }
        _ => vec![Dim::Unknown; dims.len()],
    }
}

fn clamp_idx(i: i64, n: i64, step: i64) -> i64 {
    let i = if i < 0 { i.saturating_add(n) } else { i };
    if step > 0 {
        i.clamp(0, n)
    } else {
        i.clamp(-1, n - 1)
    }
}

fn sliced(d: &Dim, start: i64, end: i64, step: i64) -> Dim {
    if let Dim::Known(n) = d {
        let (s, e) = (clamp_idx(start, *n, step), clamp_idx(end, *n, step));
        let len = if step > 0 {
            (e - s + step - 1).div_euclid(step)
        } else {
            (s - e + (-step) - 1).div_euclid(-step)
        };
        return Dim::Known(len.max(0));
    }
    let big = |x: i64| x >= i32::MAX as i64;
    let p = Poly::of_dim(d);
    match (p, step) {
        (Some(p), 1) if start >= 0 && big(end) => p
            .sub(&Poly::constant(start))
            .map_or(Dim::Unknown, |q| q.to_dim()),
        (Some(p), 1) if start == 0 && end < 0 => p
            .add(&Poly::constant(end))
            .map_or(Dim::Unknown, |q| q.to_dim()),
        (Some(p), -1) if start == -1 && end <= i64::MIN / 2 => p.to_dim(),
        (_, 1) if start >= 0 && end >= 0 && !big(end) && end >= start => Dim::Unknown,
        _ => Dim::Unknown,
    }
}

fn gather(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(data), Some(idx)) = (
        cx.dims(0).map(<[Dim]>::to_vec),
        cx.dims(1).map(<[Dim]>::to_vec),
    ) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let axis = cx.axis(cx.int("axis", 0), data.len())?;
    let mut out: Vec<Dim> = data[..axis].to_vec();
    out.extend(idx.iter().cloned());
    out.extend(data[axis + 1..].iter().cloned());
    let mut f = Fact::tensor(elem, out);
    if let (Some(v), Some(ix), 1, true) = (cx.value(0), cx.ints(1), data.len(), idx.len() <= 1) {
        let n = v.len() as i64;
        f.value = ix
            .iter()
            .map(|i| v.get((if *i < 0 { i + n } else { *i }) as usize).cloned())
            .collect();
    }
    Ok(vec![f])
}

fn gather_nd(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let b = cx.int("batch_dims", 0) as usize;
    let (Some(data), Some(idx)) = (cx.dims(0), cx.dims(1)) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let Some(Dim::Known(k)) = idx.last() else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let k = *k as usize;
    if b + k > data.len() || idx.is_empty() {
        return Err("index depth exceeds data rank".into());
    }
    let mut out = idx[..idx.len() - 1].to_vec();
    out.extend(data[b + k..].iter().cloned());
    Ok(vec![Fact::tensor(elem, out)])
}

fn pad(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let Some(dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let r = dims.len();
    let pads = if cx.opset < 11 {
        cx.ints_attr("pads").or_else(|| cx.ints_attr("paddings"))
    } else {
        cx.ints(1)
    };
    let Some(pads) = pads else {
        return Ok(vec![Fact::tensor(elem, vec![Dim::Unknown; r])]);
    };
    let axes: Vec<usize> = if cx.opset >= 18 && cx.has_input(3) {
        match cx.ints(3) {
            Some(a) => a.iter().map(|x| cx.axis(*x, r)).collect::<Result<_, _>>()?,
            None => return Ok(vec![Fact::tensor(elem, vec![Dim::Unknown; r])]),
        }
    } else {
        (0..r).collect()
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
    }
    let mut out = dims;
    for (k, a) in axes.iter().enumerate() {
        let add = Dim::Known(pads[k] + pads[k + axes.len()]);
        out[*a] = dim_op(&out[*a], &add, Poly::add);
    }
    Ok(vec![Fact::tensor(elem, out)])
}

fn topk(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let Some(mut dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![
            Fact::of_elem(elem),
            Fact::of_elem(Some(DataType::Int64)),
        ]);
    };
    let axis = cx.axis(cx.int("axis", -1), dims.len())?;
    let k = if cx.opset < 10 {
        Some(Dim::Known(cx.int("k", 0)))
    } else {
        cx.value(1).and_then(|v| v.first().cloned())
    };
    dims[axis] = k.unwrap_or(Dim::Unknown);
    Ok(vec![
        Fact::tensor(elem, dims.clone()),
        Fact::tensor(Some(DataType::Int64), dims),
    ])
}

fn one_hot(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(2);
    let Some(idx) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let depth = cx
        .value(1)
        .and_then(|v| v.first().cloned())
        .unwrap_or(Dim::Unknown);
    let r = idx.len() + 1;
    let axis = cx.axis(cx.int("axis", -1), r)?;
    let mut out = idx;
    out.insert(axis, depth);
    Ok(vec![Fact::tensor(elem, out)])
}

fn resize(op: &str, cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let Some(dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let r = dims.len();
    let axes: Vec<usize> = match cx.ints_attr("axes") {
        Some(a) if !a.is_empty() => a.iter().map(|x| cx.axis(*x, r)).collect::<Result<_, _>>()?,
        _ => (0..r).collect(),
    };
    let (scales_at, sizes_at) = match (op, cx.opset) {
        ("Upsample", o) if o < 9 => (None, None),
        ("Upsample", _) => (Some(1), None),
        (_, o) if o < 11 => (Some(1), None),
        _ => (Some(2), Some(3)),
    };
    let mut out = dims.clone();
    if let Some(sizes) = sizes_at
        .filter(|i| cx.has_input(*i))
        .and_then(|i| cx.value(i))
    {
        if sizes.len() != axes.len() {
            return Err("sizes do not match the resized axes".into());
        }
        for (a, s) in axes.iter().zip(sizes) {
            out[*a] = s.clone();
        }
        return Ok(vec![Fact::tensor(elem, out)]);
    }
    let scales: Option<Vec<f32>> = match scales_at {
        None => cx.floats_attr("scales"),
        Some(i) if cx.has_input(i) => cx.tensor(i).and_then(|t| t.to_f32_vec().ok()),
        Some(_) => None,
    };
    let Some(scales) = scales.filter(|s| !s.is_empty()) else {
        return Ok(vec![Fact::tensor(elem, vec![Dim::Unknown; r])]);
    };
    if scales.len() != axes.len() {
        return Err("scales do not match the resized axes".into());
    }
    for (a, s) in axes.iter().zip(&scales) {
        out[*a] = scaled(&dims[*a], *s);
    }
    Ok(vec![Fact::tensor(elem, out)])
}

/// `floor(d × s)`; symbolic dims survive integer scales.
fn scaled(d: &Dim, s: f32) -> Dim {
    match d {
        Dim::Known(n) => Dim::Known((*n as f64 * s as f64).floor() as i64),
        _ if s.fract() == 0.0 && s >= 1.0 => dim_op(d, &Dim::Known(s as i64), Poly::mul),
        _ => Dim::Unknown,
    }
}

fn grid_sample(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    match (cx.dims(0), cx.dims(1)) {
        (Some(x), Some(g)) if x.len() >= 3 && g.len() == x.len() => {
            let mut out = vec![x[0].clone(), x[1].clone()];
            out.extend(g[1..g.len() - 1].iter().cloned());
            Ok(vec![Fact::tensor(elem, out)])
        }
        _ => Ok(vec![Fact::of_elem(elem)]),
    }
}
