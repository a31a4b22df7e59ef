//! `fold-reshape-targets`: a Reshape target computed at run time from the input's shape
//! (`Shape → Gather → Unsqueeze → Concat → Reshape`, as exporters write for a dynamic
//! batch or sequence) becomes a constant where inference proves it equal, using
//! Reshape's own conventions: `0` copies the input dim at the same position, `-1` is the
//! one size the others leave. The shape computation then dies as dead code.

use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Dim, Graph, NodeId, Tensor};

/// Replaces the computed target of `y = Reshape(x, shape)` by a constant when each entry
/// of the inferred value of `shape` is
/// - a known size (kept; a literal 0 or -1 keeps its meaning),
/// - the symbolic dim x has at the same position (becomes 0; not with `allowzero` = 1,
///   where 0 is a size), or
/// - for at most one entry, any other symbolic size (becomes -1; with a -1 already in the
///   target, none may be).
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
        let target = constant_target(&xd, facts.fact(shape)?.value.as_ref()?, allowzero)?;
        let name = format!("{}_target", g.value(shape).name());
        Some(Box::new(move |g: &mut Graph| {
            let len = target.len() as i64;
            let t = g.add_initializer(&name, Tensor::from_i64(vec![len], &target));
            g.set_input(n, 1, Some(t));
            Ok(())
        }))
    }
}

/// The constant equal to the computed target `value` of a Reshape of an input with dims
/// `xd`, if there is one (see [`ReshapeTarget`]); `allowzero` is the Reshape's.
fn constant_target(xd: &[Dim], value: &[Dim], allowzero: bool) -> Option<Vec<i64>> {
    let mut free = value.contains(&Dim::Known(-1));
    let target: Vec<i64> = value
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(k) => Some(*k),
            Dim::Param(_) if !allowzero && xd.get(i) == Some(d) => Some(0),
            Dim::Param(_) if !free => {
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
    fn copies_same_position_dims_and_leaves_one_size_to_minus_one() {
        let x = [p("batch"), p("seq"), Dim::Known(64)];
        let k = Dim::Known;
        let t = |v: &[Dim]| constant_target(&x, v, false);
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
        assert_eq!(t(&[Dim::Unknown, k(64)]), None);
    }

    #[test]
    fn with_allowzero_only_minus_one_stands_for_a_symbol() {
        let x = [Dim::Known(1), p("seq"), Dim::Known(64)];
        let k = Dim::Known;
        let t = |v: &[Dim]| constant_target(&x, v, true);
        // seq at its own position cannot become 0 (a size with allowzero = 1).
        assert_eq!(t(&[k(1), p("seq"), k(4), k(16)]), Some(vec![1, -1, 4, 16]));
        assert_eq!(t(&[k(1), p("seq"), p("seq")]), None);
        // A literal 0 size beside -1: the -1 could not be inferred.
        assert_eq!(t(&[k(0), p("seq")]), None);
        assert_eq!(t(&[k(0), k(64)]), Some(vec![0, 64]));
    }
}
