//! Ops that make or rearrange shapes: Reshape, Transpose, Flatten, Squeeze, Unsqueeze,
//! Shape, Size, Expand, Tile, Constant, ConstantOfShape, Range, NonZero, Depth/SpaceToDepth.
//! These carry shape values, so `Shape → Gather → Concat → Reshape` resolves.

use super::broadcast::broadcast;
use crate::dtype::DataType;
use crate::infer::ctx::{Ctx, RuleResult};
use crate::infer::fact::{Fact, MAX_TRACKED, dim_op, known, product};
use crate::infer::poly::Poly;
use crate::types::Dim;

/// The rule for `op`, if this family has one.
pub fn rule(op: &str, cx: &mut Ctx) -> Option<RuleResult> {
    Some(match op {
        "Reshape" => reshape(cx),
        "Transpose" => transpose(cx),
        "Flatten" => flatten(cx),
        "Squeeze" => squeeze(cx),
        "Unsqueeze" => unsqueeze(cx),
        "Shape" => shape(cx),
        "Size" => {
            let n = cx
                .fact(0)
                .and_then(Fact::numel)
                .map_or(Dim::Unknown, |p| p.to_dim());
            Ok(vec![Fact::shape_value(DataType::Int64, vec![n], true)])
        }
        "Expand" => expand(cx),
        "Tile" => tile(cx),
        "Constant" => constant(cx),
        "ConstantOfShape" => constant_of_shape(cx),
        "Range" => range(cx),
        "NonZero" => {
            let r = cx
                .dims(0)
                .map_or(Dim::Unknown, |d| Dim::Known(d.len() as i64));
            let n = cx.fresh("nonzero");
            Ok(vec![Fact::tensor(Some(DataType::Int64), vec![r, n])])
        }
        "DepthToSpace" | "SpaceToDepth" => depth_space(op, cx),
        _ => return None,
    })
}

/// The target shape with 0 (copy, unless `allowzero`) and -1 (inferred) resolved.
fn reshape(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let target: Option<Vec<Dim>> = if cx.opset < 5 {
        cx.ints_attr("shape")
            .map(|v| v.into_iter().map(Dim::Known).collect())
    } else {
        cx.value(1).map(<[Dim]>::to_vec)
    };
    let Some(mut target) = target else {
        let rank = cx.dims(1).and_then(|d| d.first().and_then(known));
        return Ok(vec![match rank {
            Some(r) if r >= 0 => Fact::tensor(elem, vec![Dim::Unknown; r as usize]),
            _ => Fact::of_elem(elem),
        }]);
    };
    let input = cx.dims(0).map(<[Dim]>::to_vec);
    if cx.int("allowzero", 0) == 0 {
        for (i, d) in target.iter_mut().enumerate() {
            if *d == Dim::Known(0) {
                *d = input
                    .as_ref()
                    .and_then(|s| s.get(i).cloned())
                    .unwrap_or(Dim::Unknown);
            }
        }
    }
    if let Some(hole) = target.iter().position(|d| *d == Dim::Known(-1)) {
        let rest: Vec<Dim> = target
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != hole)
            .map(|(_, d)| d.clone())
            .collect();
        let total = input.as_deref().and_then(product);
        target[hole] = match (total, product(&rest)) {
            (Some(t), Some(r)) if r.as_const() != Some(0) => {
                t.div_exact(&r).map_or(Dim::Unknown, |p| p.to_dim())
            }
            _ => Dim::Unknown,
        };
    }
    if let (Some(inp), Some(t)) = (input.as_deref().and_then(product), product(&target))
        && inp.as_const().is_some()
        && t.as_const().is_some()
        && inp != t
    {
        return Err(format!("reshape of {} elements into {} elements", inp, t));
    }
    let mut f = Fact::tensor(elem, target);
    if f.rank().is_some_and(|r| r <= 1) {
        f.value = cx.value(0).map(<[Dim]>::to_vec);
    }
    Ok(vec![f])
}

fn transpose(cx: &mut Ctx) -> RuleResult {
    let Some(dims) = cx.dims(0) else {
        return Ok(vec![cx.same_as(0)]);
    };
    let perm = cx
        .ints_attr("perm")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| (0..dims.len() as i64).rev().collect());
    if perm.len() != dims.len() {
        return Err(format!("perm {perm:?} does not match rank {}", dims.len()));
    }
    let out = perm
        .iter()
        .map(|p| cx.axis(*p, dims.len()).map(|a| dims[a].clone()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![Fact::tensor(cx.elem(0), out)])
}

fn flatten(cx: &mut Ctx) -> RuleResult {
    let Some(dims) = cx.dims(0) else {
        return Ok(vec![Fact::tensor(cx.elem(0), vec![Dim::Unknown; 2])]);
    };
    let r = dims.len();
    let axis = cx.int("axis", 1);
    let a = if axis < 0 { axis + r as i64 } else { axis };
    if !(0..=r as i64).contains(&a) {
        return Err(format!("axis {axis} is out of range for rank {r}"));
    }
    let (head, tail) = dims.split_at(a as usize);
    let p = |d: &[Dim]| product(d).map_or(Dim::Unknown, |p| p.to_dim());
    Ok(vec![Fact::tensor(cx.elem(0), vec![p(head), p(tail)])])
}

/// Axes from the attribute (before opset 13) or the second input.
fn axes(cx: &Ctx) -> Option<Option<Vec<i64>>> {
    if cx.opset < 13 {
        Some(cx.ints_attr("axes"))
    } else if cx.has_input(1) {
        cx.ints(1).map(Some)
    } else {
        Some(None)
    }
}

fn squeeze(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(dims), Some(axes)) = (cx.dims(0), axes(cx)) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let r = dims.len();
    let drop: Vec<usize> = match axes {
        Some(a) => a.iter().map(|x| cx.axis(*x, r)).collect::<Result<_, _>>()?,
        None => {
            if dims.iter().any(|d| !matches!(d, Dim::Known(_))) {
                return Ok(vec![Fact::of_elem(elem)]);
            }
            (0..r).filter(|i| dims[*i] == Dim::Known(1)).collect()
        }
    };
    for a in &drop {
        if let Dim::Known(n) = dims[*a]
            && n != 1
        {
            return Err(format!("squeezes axis {a} of size {n}"));
        }
    }
    let out: Vec<Dim> = (0..r)
        .filter(|i| !drop.contains(i))
        .map(|i| dims[i].clone())
        .collect();
    let mut f = Fact::tensor(elem, out);
    f.value = cx.value(0).map(<[Dim]>::to_vec);
    Ok(vec![f])
}

fn unsqueeze(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(dims), Some(Some(axes))) = (cx.dims(0), axes(cx)) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let r = dims.len() + axes.len();
    let mut at: Vec<usize> = axes
        .iter()
        .map(|a| cx.axis(*a, r))
        .collect::<Result<_, _>>()?;
    at.sort_unstable();
    at.dedup();
    if at.len() != axes.len() {
        return Err(format!("repeated axes {axes:?}"));
    }
    let mut rest = dims.iter();
    let out: Vec<Dim> = (0..r)
        .map(|i| {
            if at.contains(&i) {
                Dim::Known(1)
            } else {
                rest.next().cloned().unwrap_or(Dim::Unknown)
            }
        })
        .collect();
    let mut f = Fact::tensor(elem, out);
    if f.rank().is_some_and(|r| r <= 1) {
        f.value = cx.value(0).map(<[Dim]>::to_vec);
    }
    Ok(vec![f])
}

fn shape(cx: &mut Ctx) -> RuleResult {
    let Some(dims) = cx.dims(0) else {
        return Ok(vec![Fact::tensor(
            Some(DataType::Int64),
            vec![Dim::Unknown],
        )]);
    };
    let r = dims.len() as i64;
    let clamp = |x: i64| (if x < 0 { x + r } else { x }).clamp(0, r) as usize;
    let start = clamp(cx.int("start", 0));
    let end = clamp(cx.int("end", r)).max(start);
    Ok(vec![Fact::shape_value(
        DataType::Int64,
        dims[start..end].to_vec(),
        false,
    )])
}

fn expand(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(dims), Some(shape)) = (cx.dims(0), cx.value(1)) else {
        let r = cx.dims(1).and_then(|d| d.first().and_then(known));
        return Ok(vec![match (r, cx.dims(0)) {
            (Some(r), Some(d)) => Fact::tensor(elem, vec![Dim::Unknown; (r as usize).max(d.len())]),
            _ => Fact::of_elem(elem),
        }]);
    };
    let out = broadcast(dims, shape)?;
    let mut f = Fact::tensor(elem, out);
    if let (Some(v), Some(1)) = (cx.value(0), f.rank())
        && let Some(Dim::Known(n)) = f.dims.as_ref().and_then(|d| d.first().cloned())
        && v.len() == 1
        && n as usize <= MAX_TRACKED
    {
        f.value = Some(vec![v[0].clone(); n as usize]);
    }
    Ok(vec![f])
}

fn tile(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(dims), Some(reps)) = (cx.dims(0), cx.value(1)) else {
        return Ok(vec![match cx.dims(0) {
            Some(d) => Fact::tensor(elem, vec![Dim::Unknown; d.len()]),
            None => Fact::of_elem(elem),
        }]);
    };
    if reps.len() != dims.len() {
        return Err(format!("{} repeats for rank {}", reps.len(), dims.len()));
    }
    let out = dims
        .iter()
        .zip(reps)
        .map(|(d, r)| dim_op(d, r, Poly::mul))
        .collect();
    Ok(vec![Fact::tensor(elem, out)])
}

fn constant(cx: &mut Ctx) -> RuleResult {
    let a = |n: &str| cx.attr(n);
    let f = if let Some(t) = a("value").and_then(|a| a.t.as_deref()) {
        Fact::of_tensor(t)
    } else if let Some(i) = a("value_int").and_then(|a| a.i) {
        Fact::shape_value(DataType::Int64, vec![Dim::Known(i)], true)
    } else if let Some(v) = a("value_ints") {
        let vals: Vec<Dim> = v.ints.iter().map(|i| Dim::Known(*i)).collect();
        let mut f = Fact::shape_value(DataType::Int64, vals, false);
        if v.ints.len() > MAX_TRACKED {
            f.value = None;
        }
        f
    } else if a("value_float").is_some() {
        Fact::tensor(Some(DataType::Float), vec![])
    } else if let Some(v) = a("value_floats") {
        Fact::tensor(
            Some(DataType::Float),
            vec![Dim::Known(v.floats.len() as i64)],
        )
    } else if a("value_string").is_some() {
        Fact::tensor(Some(DataType::String), vec![])
    } else if let Some(v) = a("value_strings") {
        Fact::tensor(
            Some(DataType::String),
            vec![Dim::Known(v.strings.len() as i64)],
        )
    } else if a("sparse_value").is_some() {
        Fact::default()
    } else {
        return Err("Constant without a value".into());
    };
    Ok(vec![f])
}

fn constant_of_shape(cx: &mut Ctx) -> RuleResult {
    let fill = cx.attr("value").and_then(|a| a.t.as_deref());
    let elem = fill.map_or(DataType::Float, |t| t.dtype());
    let Some(shape) = cx.value(0) else {
        let r = cx.dims(0).and_then(|d| d.first().and_then(known));
        return Ok(vec![match r {
            Some(r) if r >= 0 => Fact::tensor(Some(elem), vec![Dim::Unknown; r as usize]),
            _ => Fact::of_elem(Some(elem)),
        }]);
    };
    let mut f = Fact::tensor(Some(elem), shape.to_vec());
    let fill_v = fill
        .and_then(|t| t.to_i64_vec().ok())
        .and_then(|v| v.first().copied());
    if let (Some(v), [Dim::Known(n)]) = (fill_v.or(Some(0)), shape)
        && matches!(elem, DataType::Int64 | DataType::Int32)
        && *n as usize <= MAX_TRACKED
    {
        f.value = Some(vec![Dim::Known(v); *n as usize]);
    }
    Ok(vec![f])
}

fn range(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0).or(cx.elem(1));
    let scalar = |i: usize| cx.value(i).and_then(|v| v.first().cloned());
    let (start, limit, delta) = (scalar(0), scalar(1), scalar(2));
    let len = match (&start, &limit, &delta) {
        (Some(Dim::Known(s)), Some(Dim::Known(l)), Some(Dim::Known(d))) if *d != 0 => {
            let n = (l - s + d - d.signum()) / d;
            Dim::Known(n.max(0))
        }
        (Some(s), Some(l), Some(Dim::Known(1))) => dim_op(l, s, Poly::sub),
        _ => Dim::Unknown,
    };
    let len = if len == Dim::Unknown {
        cx.fresh("range")
    } else {
        len
    };
    let mut f = Fact::tensor(elem, vec![len.clone()]);
    if let (Some(Dim::Known(s)), Dim::Known(n), Some(Dim::Known(d))) = (start, &len, delta)
        && *n as usize <= MAX_TRACKED
        && matches!(elem, Some(DataType::Int64 | DataType::Int32))
    {
        f.value = Some((0..*n).map(|i| Dim::Known(s + i * d)).collect());
    }
    Ok(vec![f])
}

fn depth_space(op: &str, cx: &mut Ctx) -> RuleResult {
    let b = cx.int("blocksize", 1);
    let elem = cx.elem(0);
    let Some([n, c, h, w]) = cx
        .dims(0)
        .map(<[Dim]>::to_vec)
        .as_deref()
        .and_then(|d| <&[Dim; 4]>::try_from(d).ok())
        .cloned()
    else {
        return Ok(vec![Fact::tensor(elem, vec![Dim::Unknown; 4])]);
    };
    let bb = Dim::Known(b * b);
    let k = Dim::Known(b);
    let out = if op == "DepthToSpace" {
        vec![
            n,
            dim_op(&c, &bb, Poly::div_exact),
            dim_op(&h, &k, Poly::mul),
            dim_op(&w, &k, Poly::mul),
        ]
    } else {
        vec![
            n,
            dim_op(&c, &bb, Poly::mul),
            dim_op(&h, &k, Poly::div_exact),
            dim_op(&w, &k, Poly::div_exact),
        ]
    };
    Ok(vec![Fact::tensor(elem, out)])
}
