//! The checker's own semantics of element-wise ops: broadcast dims, and the elements of
//! small integer tensors (shape arithmetic) when they follow for every input.

use super::Out;
use super::poly::Poly;
use super::terms::Sym;
use whittle_ir::Node;

/// Element types whose elements the checker follows: int32, int64, bool.
pub fn tracked(dtype: i32) -> bool {
    matches!(dtype, 6 | 7 | 9)
}

/// Multidirectional (numpy) broadcast of `shapes`. A dim the checker does not know is 1
/// or the other side's, so a known dim other than 1 decides it; a symbolic dim against a
/// constant other than 1 must be 1 (or equal), so the constant decides it.
pub fn broadcast(shapes: &[&Vec<Option<Poly>>]) -> Option<Vec<Option<Poly>>> {
    let rank = shapes.iter().map(|s| s.len()).max()?;
    let one = Poly::constant(1);
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let at = |s: &Vec<Option<Poly>>| -> Option<Poly> {
            let k = (i + s.len()).checked_sub(rank)?;
            s[k].clone()
        };
        let mut unknown = false;
        let mut big: Vec<Poly> = Vec::new();
        for s in shapes {
            let pad = i + s.len() < rank;
            match (pad, at(s)) {
                (true, _) => {}
                (false, None) => unknown = true,
                (false, Some(d)) if d == one => {}
                (false, Some(d)) if !big.contains(&d) => big.push(d),
                _ => {}
            }
        }
        let consts: Vec<&Poly> = big.iter().filter(|d| d.as_const().is_some()).collect();
        out.push(match (big.len(), consts.len()) {
            (0, _) if unknown => None,
            (0, _) => Some(one.clone()),
            (1, _) => Some(big[0].clone()),
            (_, 1) => Some(consts[0].clone()),
            _ => None,
        });
    }
    Some(out)
}

/// The shape of an element-wise op on `xs` (omitted inputs skipped).
fn broadcast_of(xs: &[Option<&Sym>]) -> Option<Vec<Option<Poly>>> {
    let shapes: Option<Vec<&Vec<Option<Poly>>>> =
        xs.iter().flatten().map(|x| x.shape.as_ref()).collect();
    broadcast(&shapes?)
}

/// Elements of a binary op on integer tensors of the same shape or where one side has
/// one element.
fn zip_ints(a: &Sym, b: &Sym, f: impl Fn(&Poly, &Poly) -> Option<Poly>) -> Option<Vec<Poly>> {
    let (x, y) = (a.ints.as_ref()?, b.ints.as_ref()?);
    match (x.len(), y.len()) {
        (n, m) if n == m && a.shape == b.shape => x.iter().zip(y).map(|(p, q)| f(p, q)).collect(),
        (1, _) => y.iter().map(|q| f(&x[0], q)).collect(),
        (_, 1) => x.iter().map(|p| f(p, &y[0])).collect(),
        _ => None,
    }
}

/// Both constants, as numbers.
fn consts(p: &Poly, q: &Poly) -> Option<(i64, i64)> {
    Some((p.as_const()?, q.as_const()?))
}

/// The elements of `op` on two integer elements, when they follow for every input.
fn int_binary(op: &str, p: &Poly, q: &Poly) -> Option<Poly> {
    let bool_of = |b: bool| Some(Poly::constant(i64::from(b)));
    match op {
        "Add" => p.add(q),
        "Sub" => p.sub(q),
        "Mul" => p.mul(q),
        // Only exact quotients: then truncating and flooring agree.
        "Div" => p.div_exact(q),
        "Max" => consts(p, q).map(|(a, b)| Poly::constant(a.max(b))),
        "Min" => consts(p, q).map(|(a, b)| Poly::constant(a.min(b))),
        "Equal" if p == q => bool_of(true),
        "Equal" => consts(p, q).and_then(|(a, b)| bool_of(a == b)),
        "Less" => consts(p, q).and_then(|(a, b)| bool_of(a < b)),
        "Greater" => consts(p, q).and_then(|(a, b)| bool_of(a > b)),
        "LessOrEqual" => consts(p, q).and_then(|(a, b)| bool_of(a <= b)),
        "GreaterOrEqual" => consts(p, q).and_then(|(a, b)| bool_of(a >= b)),
        "And" => consts(p, q).and_then(|(a, b)| bool_of(a != 0 && b != 0)),
        "Or" => consts(p, q).and_then(|(a, b)| bool_of(a != 0 || b != 0)),
        _ => None,
    }
}

/// Comparisons and logic give bool.
fn is_predicate(op: &str) -> bool {
    matches!(
        op,
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor"
    )
}

/// A binary element-wise op (`Add`, `Equal`, `Pow`, …).
pub fn binary(op: &str, a: &Sym, b: &Sym) -> Out {
    let dtype = if is_predicate(op) { 9 } else { a.dtype };
    let ints = (tracked(a.dtype) && a.dtype == b.dtype)
        .then(|| zip_ints(a, b, |p, q| int_binary(op, p, q)))
        .flatten();
    let shape = broadcast_of(&[Some(a), Some(b)]);
    let kept = unit_side(op, a, b)
        .filter(|x| x.dims().is_some() && shape == x.shape && a.dtype != 0 && a.dtype == b.dtype);
    Out {
        dtype,
        term: kept.map(|x| x.term),
        ints: match kept {
            Some(x) => x.ints.clone(),
            None => ints,
        },
        shape,
    }
}

/// The operand a binary op returns unchanged when the other is a constant whose every
/// element is the op's unit: `x·1`, `1·x`, `x/1`, `x − (+0)`, `x + 0`, `0 + x`,
/// `x ∧ true`, `x ∨ false`. All are exact, but for `x + (+0)` with x = −0, which gives
/// +0: equal as numbers, not in the sign of zero.
fn unit_side<'s>(op: &str, a: &'s Sym, b: &'s Sym) -> Option<&'s Sym> {
    let is = |s: &Sym, v: f64| s.splat == Some(v);
    let plus_zero = |s: &Sym| s.splat.is_some_and(|z| z.to_bits() == 0);
    match op {
        "Mul" | "And" if is(b, 1.0) => Some(a),
        "Mul" | "And" if is(a, 1.0) => Some(b),
        "Div" if is(b, 1.0) => Some(a),
        "Sub" if plus_zero(b) => Some(a),
        "Add" | "Or" if is(b, 0.0) => Some(a),
        "Add" | "Or" if is(a, 0.0) => Some(b),
        _ => None,
    }
}

/// `Where(c, x, y)`: elements picked by a constant condition.
pub fn where_(c: &Sym, x: &Sym, y: &Sym) -> Out {
    let ints = (|| {
        let cond = c.const_ints()?;
        let (xv, yv) = (x.ints.as_ref()?, y.ints.as_ref()?);
        let n = cond.len().max(xv.len()).max(yv.len());
        let pick = |v: &Vec<Poly>, i: usize| v.get(if v.len() == 1 { 0 } else { i }).cloned();
        if [cond.len(), xv.len(), yv.len()]
            .iter()
            .any(|l| *l != 1 && *l != n)
        {
            return None;
        }
        (0..n)
            .map(|i| match cond[if cond.len() == 1 { 0 } else { i }] {
                0 => pick(yv, i),
                _ => pick(xv, i),
            })
            .collect()
    })();
    let shape = broadcast_of(&[Some(c), Some(x), Some(y)]);
    let ints = ints.filter(|_| {
        // Only rank <= 1 operands, so the element order is the broadcast one.
        [c, x, y].iter().all(|s| s.rank().is_some_and(|r| r <= 1))
    });
    Out {
        dtype: x.dtype,
        shape,
        ints,
        term: None,
    }
}

/// A unary op that keeps its input's dims (`Relu`, `Neg`, `Softmax`, …).
pub fn unary(op: &str, x: &Sym) -> Out {
    let dtype = match op {
        "IsNaN" | "IsInf" | "Not" => 9,
        _ => x.dtype,
    };
    let ints = match op {
        "Neg" => x
            .ints
            .as_ref()
            .and_then(|v| v.iter().map(Poly::neg).collect()),
        "Abs" => x
            .const_ints()
            .map(|v| v.iter().map(|i| Poly::constant(i.abs())).collect()),
        _ => None,
    };
    Out {
        dtype,
        shape: x.shape.clone(),
        ints,
        term: None,
    }
}

/// `Cast(x, to)`: x itself when it already has that type; integer elements kept when
/// they are constants the target holds.
pub fn cast(node: &Node, x: &Sym) -> Out {
    let to = node.attr("to").and_then(|a| a.i).unwrap_or(0) as i32;
    let fits = |v: i64| match to {
        7 => true,
        6 => i32::try_from(v).is_ok(),
        _ => false,
    };
    let ints = match (tracked(x.dtype), to) {
        (true, 9) => x.const_ints().map(|v| {
            v.iter()
                .map(|i| Poly::constant(i64::from(*i != 0)))
                .collect()
        }),
        // Widening to int64 keeps every value, known or symbolic.
        (true, 7) => x.ints.clone(),
        (true, _) => x
            .const_ints()
            .filter(|v| v.iter().all(|i| fits(*i)))
            .map(|v| v.into_iter().map(Poly::constant).collect()),
        _ => None,
    };
    let same = x.dtype != 0 && x.dtype == to;
    Out {
        dtype: to,
        shape: x.shape.clone(),
        ints: if same { x.ints.clone() } else { ints },
        term: same.then_some(x.term),
    }
}
