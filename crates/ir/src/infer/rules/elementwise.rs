//! Elementwise ops: unary math and activations, broadcasting binary and variadic ops,
//! comparisons, `Where`, casts, quantize/dequantize. Integer arithmetic on tracked shape
//! values is carried out, so `Shape(x)[1] * 2` stays known.

use super::broadcast::broadcast;
use crate::dtype::DataType;
use crate::infer::ctx::{Ctx, RuleResult};
use crate::infer::fact::{Fact, MAX_TRACKED, dim_op, known};
use crate::infer::poly::Poly;
use crate::types::Dim;

/// Ops whose output has the type and shape of their first input.
const SAME_AS_FIRST: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "BitwiseNot",
    "Ceil",
    "Celu",
    "Cos",
    "Cosh",
    "CumSum",
    "Elu",
    "Erf",
    "Exp",
    "Floor",
    "Gelu",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "LRN",
    "MeanVarianceNormalization",
    "Mish",
    "Neg",
    "Reciprocal",
    "Relu",
    "ReverseSequence",
    "Round",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Softmax",
    "Softplus",
    "Softsign",
    "Sqrt",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Trilu",
    "Swish",
    "Not",
    "RandomNormalLike",
    "RandomUniformLike",
    "Bernoulli",
    "Det",
];

/// Broadcasting binary ops whose output has the element type of the first input.
const ARITHMETIC: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "PRelu",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "And",
    "Or",
    "Xor",
];

/// Broadcasting ops whose output is boolean.
const COMPARISON: &[&str] = &["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"];

/// The rule for `op`, if this family has one.
pub fn rule(op: &str, cx: &mut Ctx) -> Option<RuleResult> {
    Some(match op {
        "Identity" => Ok(vec![cx.fact(0).cloned().unwrap_or_default()]),
        _ if SAME_AS_FIRST.contains(&op) => Ok(vec![cx.same_as(0)]),
        "IsNaN" | "IsInf" => Ok(vec![with_elem(cx.same_as(0), DataType::Bool)]),
        _ if ARITHMETIC.contains(&op) => binary(op, cx, None),
        _ if COMPARISON.contains(&op) => binary(op, cx, Some(DataType::Bool)),
        "Sum" | "Mean" | "Max" | "Min" => variadic(op, cx),
        "Where" => where_(cx),
        "Clip" => Ok(vec![cx.same_as(0)]),
        "Dropout" => dropout(cx),
        "Cast" => cast(cx),
        "CastLike" => Ok(vec![with_value(
            with_elem_opt(cx.same_as(0), cx.elem(1)),
            cx.fact(0),
        )]),
        "EyeLike" => {
            let dt = cx
                .attr("dtype")
                .and_then(|a| a.i)
                .map(|c| DataType::from_code(c as i32));
            Ok(vec![with_elem_opt(cx.same_as(0), dt.or(cx.elem(0)))])
        }
        "QuantizeLinear" => quantize(cx),
        "DequantizeLinear" => {
            let elem = cx
                .attr("output_dtype")
                .and_then(|a| a.i)
                .filter(|c| *c != 0);
            let elem = elem.map(|c| DataType::from_code(c as i32)).or(cx.elem(1));
            Ok(vec![with_elem_opt(cx.same_as(0), elem)])
        }
        "DynamicQuantizeLinear" => Ok(vec![
            with_elem(cx.same_as(0), DataType::Uint8),
            Fact::tensor(Some(DataType::Float), vec![]),
            Fact::tensor(Some(DataType::Uint8), vec![]),
        ]),
        _ => return None,
    })
}

fn with_elem(mut f: Fact, e: DataType) -> Fact {
    f.elem = Some(e);
    f
}

fn with_elem_opt(mut f: Fact, e: Option<DataType>) -> Fact {
    f.elem = e;
    f
}

/// Carries integer values through a cast to an integer type.
fn with_value(mut f: Fact, src: Option<&Fact>) -> Fact {
    if matches!(f.elem, Some(DataType::Int64 | DataType::Int32)) {
        f.value = src.and_then(|s| s.value.clone());
    }
    f
}

fn cast(cx: &mut Ctx) -> RuleResult {
    let to = cx
        .attr("to")
        .and_then(|a| a.i)
        .map(|c| DataType::from_code(c as i32));
    let src_int = matches!(cx.elem(0), Some(DataType::Int64 | DataType::Int32));
    let f = with_elem_opt(cx.same_as(0), to);
    Ok(vec![if src_int {
        with_value(f, cx.fact(0))
    } else {
        f
    }])
}

fn dropout(cx: &mut Ctx) -> RuleResult {
    let out = cx.same_as(0);
    let mask = with_elem(cx.same_as(0), DataType::Bool);
    Ok(vec![out, mask])
}

fn quantize(cx: &mut Ctx) -> RuleResult {
    let by_attr = cx
        .attr("output_dtype")
        .and_then(|a| a.i)
        .filter(|c| *c != 0);
    let elem = by_attr
        .map(|c| DataType::from_code(c as i32))
        .or_else(|| cx.has_input(2).then(|| cx.elem(2)).flatten())
        .or(Some(DataType::Uint8));
    Ok(vec![with_elem_opt(cx.same_as(0), elem)])
}

/// A broadcasting op of two inputs; `out` overrides the output element type.
fn binary(op: &str, cx: &mut Ctx, out: Option<DataType>) -> RuleResult {
    let elem = out
        .or(cx.elem(0))
        .or(if op == "PRelu" { None } else { cx.elem(1) });
    let dims = match (cx.dims(0), cx.dims(1)) {
        // Before opset 7, B broadcasts into A's shape (`broadcast`/`axis` attributes).
        (Some(a), _) if cx.opset < 7 => Some(a.to_vec()),
        (Some(a), Some(b)) if op == "PRelu" => Some(broadcast(a, b).map(|_| a.to_vec())?),
        (Some(a), Some(b)) => Some(broadcast(a, b)?),
        _ => None,
    };
    let mut f = Fact {
        elem,
        dims,
        value: None,
    };
    f.value = combine_values(op, cx.fact(0), cx.fact(1), &f);
    Ok(vec![f])
}

/// Elementwise arithmetic on tracked integer values.
fn combine_values(op: &str, a: Option<&Fact>, b: Option<&Fact>, out: &Fact) -> Option<Vec<Dim>> {
    let (a, b) = (a?, b?);
    let (va, vb) = (a.value.as_ref()?, b.value.as_ref()?);
    if out.rank()? > 1 {
        return None;
    }
    let n = va.len().max(vb.len());
    if n > MAX_TRACKED || (va.len() != n && va.len() != 1) || (vb.len() != n && vb.len() != 1) {
        return None;
    }
    let at = |v: &Vec<Dim>, i: usize| v[if v.len() == 1 { 0 } else { i }].clone();
    (0..n)
        .map(|i| scalar_op(op, &at(va, i), &at(vb, i)))
        .collect()
}

fn scalar_op(op: &str, x: &Dim, y: &Dim) -> Option<Dim> {
    let cmp = |f: fn(i64, i64) -> bool| Some(Dim::Known(f(known(x)?, known(y)?) as i64));
    match op {
        "Add" => Some(dim_op(x, y, Poly::add)),
        "Sub" => Some(dim_op(x, y, Poly::sub)),
        "Mul" => Some(dim_op(x, y, Poly::mul)),
        "Div" => match (known(x), known(y)) {
            (Some(p), Some(q)) if q != 0 => p.checked_div(q).map(Dim::Known),
            _ => Some(dim_op(x, y, Poly::div_exact)),
        },
        "Mod" => Some(Dim::Known(known(x)?.checked_rem(known(y)?)?)),
        "Equal" if x == y && *x != Dim::Unknown => Some(Dim::Known(1)),
        "Equal" if never_equal(x, y) => Some(Dim::Known(0)),
        "Equal" => cmp(|a, b| a == b),
        "Less" => cmp(|a, b| a < b),
        "Greater" => cmp(|a, b| a > b),
        "LessOrEqual" => cmp(|a, b| a <= b),
        "GreaterOrEqual" => cmp(|a, b| a >= b),
        "Max" => cmp_pick(x, y, true),
        "Min" => cmp_pick(x, y, false),
        _ => None,
    }
}

/// True when one side is negative and the other a size: a symbol, or sizes combined with
/// non-negative coefficients (TorchScript's `Where(Equal(shape, -1), 1, shape)` before an
/// Expand compares dims with -1).
fn never_equal(x: &Dim, y: &Dim) -> bool {
    let negative = |d: &Dim| matches!(d, Dim::Known(k) if *k < 0);
    let size = |d: &Dim| {
        matches!(d, Dim::Param(_))
            && Poly::of_dim(d).is_some_and(|p| p.terms().iter().all(|(_, c)| *c >= 0))
    };
    (negative(x) && size(y)) || (negative(y) && size(x))
}

fn cmp_pick(x: &Dim, y: &Dim, max: bool) -> Option<Dim> {
    if x == y {
        return Some(x.clone());
    }
    let (p, q) = (known(x)?, known(y)?);
    Some(Dim::Known(if max { p.max(q) } else { p.min(q) }))
}

fn variadic(op: &str, cx: &mut Ctx) -> RuleResult {
    let mut acc: Option<Fact> = None;
    for i in 0..cx.n_inputs() {
        let f = cx.fact(i).cloned().unwrap_or_default();
        acc = Some(match acc {
            None => f,
            Some(a) => {
                let dims = match (&a.dims, &f.dims) {
                    (Some(x), Some(y)) => Some(broadcast(x, y)?),
                    _ => None,
                };
                let mut out = Fact {
                    elem: a.elem.or(f.elem),
                    dims,
                    value: None,
                };
                if matches!(op, "Max" | "Min") {
                    out.value = combine_values(op, Some(&a), Some(&f), &out);
                }
                out
            }
        });
    }
    Ok(acc.into_iter().collect())
}

fn where_(cx: &mut Ctx) -> RuleResult {
    let dims = match (cx.dims(0), cx.dims(1), cx.dims(2)) {
        (Some(c), Some(x), Some(y)) => Some(broadcast(&broadcast(c, x)?, y)?),
        _ => None,
    };
    let mut f = Fact {
        elem: cx.elem(1).or(cx.elem(2)),
        dims,
        value: None,
    };
    if let (Some(c), Some(x), Some(y)) = (cx.ints(0), cx.value(1), cx.value(2)) {
        let n = c.len().max(x.len()).max(y.len());
        let at = |v: &[Dim], i: usize| v.get(if v.len() == 1 { 0 } else { i }).cloned();
        let pick: Option<Vec<Dim>> = (0..n)
            .map(|i| {
                let ci = *c.get(if c.len() == 1 { 0 } else { i })?;
                if ci != 0 { at(x, i) } else { at(y, i) }
            })
            .collect();
        if f.rank().is_some_and(|r| r <= 1) {
            f.value = pick;
        }
    }
    Ok(vec![f])
}
