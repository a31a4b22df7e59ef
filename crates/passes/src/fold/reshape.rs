//! `fold-reshape-targets`: a Reshape target computed at run time from the input's shape
//! (`Shape → Gather → Unsqueeze → Concat → Reshape`, as exporters write for a dynamic
//! batch or sequence) becomes a constant where inference proves it equal, using
//! Reshape's own conventions: `0` copies the input dim at the same position, `-1` is the
//! one size the others leave. The shape computation then dies as dead code.

use crate::guard::{const_ints, producer_op};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::infer::Inference;
use whittle_ir::{Dim, Graph, NodeId, Tensor, ValueId};

/// Replaces the computed target of `y = Reshape(x, shape)` by a constant when each entry
/// of the inferred value of `shape` is
/// - a known size (kept; a literal 0 or -1 keeps its meaning),
/// - x's own dim at the same position (becomes 0; not with `allowzero` = 1, where 0 is a
///   size): the same symbolic dim, or, whatever inference knows of it, an entry the graph
///   computes as `Unsqueeze(Gather(Shape(x), i))` at position i of a Concat, or
/// - for at most one entry, any other size, symbolic or unknown (becomes -1; with a -1
///   already in the target, none may be, unless inference knows the size that -1 stands
///   for in the result: it is then written out and frees the -1): the product of the
///   target is x's element count, so -1 is that entry.
///
/// Trust: the symbolic proof rests on inferred facts, which (as for `fold-shapes`) take
/// an exporter's declared dims where computation alone knows nothing; the structural
/// proof (`Shape(x)` itself) rests on the graph only.
///
/// Guards: default domain; the target is not already a constant; x's rank is known; no
/// entry unknown; with `allowzero` = 1, no 0 size beside the new -1 (it could not be
/// inferred). (A model fed an empty batch, where an entry left to -1 sits beside a dim
/// that is 0 at run time, can no longer infer the -1: such a Reshape has nothing to
/// reshape.)
pub struct ReshapeTarget;

impl Rule for ReshapeTarget {
    fn name(&self) -> &'static str {
        "reshape-target"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let facts = cx.facts?;
        let node = g.node(n);
        if !node.domain().is_empty() || node.op() != "Reshape" {
            return None;
        }
        let allowzero = node.attr("allowzero").and_then(|a| a.i).unwrap_or(0) != 0;
        let (x, shape) = (node.input(0)?, node.input(1)?);
        if g.value(shape).initializer().is_some() {
            return None;
        }
        let xd = facts.fact(x)?.dims.clone()?;
        let value = target_value(g, shape, facts)?;
        let copied = copied_positions(g, shape, x, xd.len(), facts);
        let target = constant_target(&xd, &value, &copied, allowzero).or_else(|| {
            let out = facts.fact(node.output(0)?)?.dims.clone()?;
            constant_target(&xd, &resolve_minus_one(&value, &out)?, &copied, allowzero)
        })?;
        let name = format!("{}_target", g.value(shape).name());
        Some(Box::new(move |g: &mut Graph| {
            let len = target.len() as i64;
            let t = g.add_initializer(&name, Tensor::from_i64(vec![len], &target));
            g.set_input(n, 1, Some(t));
            Ok(())
        }))
    }
}

/// The inferred elements of the Reshape target `shape`: its value, or, when inference
/// could not give all of it, the values of the Concat parts it is made of, with the
/// elements nothing knows as [`Dim::Unknown`].
fn target_value(g: &Graph, shape: ValueId, facts: &Inference) -> Option<Vec<Dim>> {
    if let Some(v) = &facts.fact(shape)?.value {
        return Some(v.clone());
    }
    let concat = producer_op(g, shape, "Concat")?;
    let mut out = Vec::new();
    for part in g.node(concat).inputs() {
        let f = facts.fact((*part)?)?;
        match (&f.value, f.dims.as_deref()) {
            (Some(v), _) => out.extend(v.iter().cloned()),
            (None, Some([Dim::Known(n)])) if *n >= 0 && *n <= 64 => {
                out.extend(std::iter::repeat_n(Dim::Unknown, *n as usize));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// For each element of the Reshape target `shape`, whether the graph computes it as x's
/// dim at that same position: `shape = Concat(parts, axis 0)` where the part at element i
/// is `Unsqueeze(Gather(Shape(x), i))` (or a one-element `Gather(Shape(x), [i])`).
fn copied_positions(
    g: &Graph,
    shape: ValueId,
    x: ValueId,
    rank: usize,
    facts: &Inference,
) -> Vec<bool> {
    let mut out = Vec::new();
    let Some(concat) = producer_op(g, shape, "Concat") else {
        return out;
    };
    for part in g.node(concat).inputs().iter().copied() {
        let Some(part) = part else { return Vec::new() };
        let len = match facts.fact(part).and_then(|f| f.dims.clone()).as_deref() {
            Some([Dim::Known(n)]) if *n >= 0 => *n as usize,
            _ => return Vec::new(),
        };
        let at = out.len();
        let copies = len == 1 && dim_of(g, part, x, rank) == Some(at);
        out.extend(std::iter::repeat_n(false, len));
        if copies {
            out[at] = true;
        }
    }
    out
}

/// The position of the dim of `x` that the one-element `part` holds, when the graph
/// computes it as `[Unsqueeze](Gather(Shape(x), i))`.
fn dim_of(g: &Graph, part: ValueId, x: ValueId, rank: usize) -> Option<usize> {
    let gathered = match producer_op(g, part, "Unsqueeze") {
        Some(u) => g.node(u).input(0)?,
        None => part,
    };
    let gather = producer_op(g, gathered, "Gather")?;
    if g.node(gather).attr("axis").and_then(|a| a.i).unwrap_or(0) != 0 {
        return None;
    }
    let shape_of = producer_op(g, g.node(gather).input(0)?, "Shape")?;
    let s = g.node(shape_of);
    if s.input(0)? != x || s.attr("start").is_some() || s.attr("end").is_some() {
        return None;
    }
    let [i] = const_ints(g, g.node(gather).input(1))?[..] else {
        return None;
    };
    let i = if i < 0 { i + rank as i64 } else { i };
    usize::try_from(i).ok().filter(|i| *i < rank)
}

/// `value` with its `-1` entry replaced by the size inference gives that dim of the
/// Reshape's result `out`, when that is a known positive size: the `-1` is then free for
/// an entry only a symbol can say (`[-1, seq, 16]` of a `[1, 4, seq, 16]` input becomes
/// `[4, -1, 16]`).
fn resolve_minus_one(value: &[Dim], out: &[Dim]) -> Option<Vec<Dim>> {
    let i = value.iter().position(|d| *d == Dim::Known(-1))?;
    let size = match out.get(i)? {
        Dim::Known(n) if *n > 0 && out.len() == value.len() => *n,
        _ => return None,
    };
    let mut v = value.to_vec();
    v[i] = Dim::Known(size);
    Some(v)
}

/// The constant equal to the computed target `value` of a Reshape of an input with dims
/// `xd`, if there is one (see [`ReshapeTarget`]); `copied[i]` says the graph computes
/// entry i as x's dim i; `allowzero` is the Reshape's.
fn constant_target(
    xd: &[Dim],
    value: &[Dim],
    copied: &[bool],
    allowzero: bool,
) -> Option<Vec<i64>> {
    let mut free = value.contains(&Dim::Known(-1));
    let same = |i: usize, d: &Dim| {
        copied.get(i) == Some(&true) || (matches!(d, Dim::Param(_)) && xd.get(i) == Some(d))
    };
    let target: Vec<i64> = value
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(k) => Some(*k),
            _ if !allowzero && same(i, d) => Some(0),
            _ if !free => {
                free = true;
                Some(-1)
            }
            _ => None,
        })
        .collect::<Option<_>>()?;
    let literal_zero = allowzero && target.contains(&0) && target.contains(&-1);
    (!literal_zero).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::constant_target;
    use whittle_ir::Dim;

    fn p(s: &str) -> Dim {
        Dim::Param(s.into())
    }

    #[test]
    fn a_minus_one_of_known_size_frees_the_minus_one_for_a_symbol() {
        use super::resolve_minus_one;
        let k = Dim::Known;
        let x = [k(1), k(4), p("seq"), k(16)];
        let value = [k(-1), p("seq"), k(16)];
        assert_eq!(constant_target(&x, &value, &[], false), None);
        let out = [k(4), p("seq"), k(16)];
        let v = resolve_minus_one(&value, &out).expect("4 is known");
        assert_eq!(constant_target(&x, &v, &[], false), Some(vec![4, -1, 16]));
        // The result's size there is not known, or is 0: nothing to resolve.
        assert_eq!(resolve_minus_one(&value, &[p("n"), p("seq"), k(16)]), None);
        assert_eq!(resolve_minus_one(&value, &[k(0), p("seq"), k(16)]), None);
        assert_eq!(
            resolve_minus_one(&[k(4), p("seq")], &[k(4), p("seq")]),
            None
        );
    }

    #[test]
    fn copies_same_position_dims_and_leaves_one_size_to_minus_one() {
        let x = [p("batch"), p("seq"), Dim::Known(64)];
        let k = Dim::Known;
        let t = |v: &[Dim]| constant_target(&x, v, &[], false);
        assert_eq!(t(&[p("batch"), k(64)]), Some(vec![0, 64]));
        assert_eq!(t(&[p("batch*seq"), k(64)]), Some(vec![-1, 64]));
        assert_eq!(
            t(&[p("batch"), p("seq"), k(4), k(16)]),
            Some(vec![0, 0, 4, 16])
        );
        assert_eq!(t(&[p("batch"), k(-1)]), Some(vec![0, -1]));
        // Two sizes left over, or one beside a -1: no constant says it.
        assert_eq!(t(&[p("batch*seq"), p("seq*64")]), None);
        assert_eq!(t(&[p("batch*seq"), k(-1)]), None);
        // A dim that only looks equal: seq sits at position 1 of x, not 0.
        assert_eq!(t(&[p("seq"), p("batch"), k(64)]), None);
        // One unknown size is still the one -1; two are not.
        assert_eq!(t(&[Dim::Unknown, k(64)]), Some(vec![-1, 64]));
        assert_eq!(t(&[Dim::Unknown, Dim::Unknown]), None);
        // Unknown sizes the graph proves to be x's own dims are copies.
        let u = Dim::Unknown;
        let copied = [true, false, false];
        assert_eq!(
            constant_target(
                &[u.clone(), u.clone(), k(8)],
                &[u.clone(), u.clone(), k(8)],
                &copied,
                false
            ),
            Some(vec![0, -1, 8])
        );
    }

    #[test]
    fn with_allowzero_only_minus_one_stands_for_a_symbol() {
        let x = [Dim::Known(1), p("seq"), Dim::Known(64)];
        let k = Dim::Known;
        let t = |v: &[Dim]| constant_target(&x, v, &[], true);
        // seq at its own position cannot become 0 (a size with allowzero = 1).
        assert_eq!(t(&[k(1), p("seq"), k(4), k(16)]), Some(vec![1, -1, 4, 16]));
        assert_eq!(t(&[k(1), p("seq"), p("seq")]), None);
        // A literal 0 size beside -1: the -1 could not be inferred.
        assert_eq!(t(&[k(0), p("seq")]), None);
        assert_eq!(t(&[k(0), k(64)]), Some(vec![0, 64]));
    }
}
