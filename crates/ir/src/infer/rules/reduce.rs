//! Reductions: Reduce* (axes as attribute or input by opset), ArgMax/ArgMin.

use crate::dtype::DataType;
use crate::infer::ctx::{Ctx, RuleResult};
use crate::infer::fact::Fact;
use crate::types::Dim;

const REDUCE: &[&str] = &[
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
];

/// The rule for `op`, if this family has one.
pub fn rule(op: &str, cx: &mut Ctx) -> Option<RuleResult> {
    Some(match op {
        _ if REDUCE.contains(&op) => reduce(op, cx),
        "ArgMax" | "ArgMin" => arg(cx),
        _ => return None,
    })
}

/// The opset from which `op` takes its axes as an input.
fn axes_input_since(op: &str) -> i64 {
    if op == "ReduceSum" { 13 } else { 18 }
}

fn reduce(op: &str, cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let keep = cx.int("keepdims", 1) != 0;
    let Some(dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let r = dims.len();
    let axes: Option<Vec<i64>> = if cx.opset >= axes_input_since(op) {
        if cx.has_input(1) {
            match cx.ints(1) {
                Some(a) => Some(a),
                None => {
                    let n = if keep { r } else { 0 };
                    let f = if keep {
                        Fact::tensor(elem, vec![Dim::Unknown; n])
                    } else {
                        Fact::of_elem(elem)
                    };
                    return Ok(vec![f]);
                }
            }
        } else {
            None
        }
    } else {
        cx.ints_attr("axes")
    };
    let axes = axes.filter(|a| !a.is_empty());
    let reduced: Vec<usize> = match axes {
        Some(a) => a.iter().map(|x| cx.axis(*x, r)).collect::<Result<_, _>>()?,
        None if cx.int("noop_with_empty_axes", 0) != 0 => return Ok(vec![cx.same_as(0)]),
        None => (0..r).collect(),
    };
    Ok(vec![Fact::tensor(elem, reduce_dims(&dims, &reduced, keep))])
}

fn reduce_dims(dims: &[Dim], axes: &[usize], keep: bool) -> Vec<Dim> {
    dims.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keep) {
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
            (false, _) => Some(d.clone()),
        })
        .collect()
}

fn arg(cx: &mut Ctx) -> RuleResult {
    let elem = Some(DataType::Int64);
    let Some(dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    let a = cx.axis(cx.int("axis", 0), dims.len())?;
    let keep = cx.int("keepdims", 1) != 0;
    Ok(vec![Fact::tensor(elem, reduce_dims(&dims, &[a], keep))])
}
