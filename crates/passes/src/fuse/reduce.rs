//! `Reduce*(keepdims=0)` followed by an `Unsqueeze` of the same axes is the reduction
//! with `keepdims=1`; `Concat` of a single-use `Concat` along the same axis is one Concat.

use crate::guard::{const_ints, dims, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{Graph, NodeId, ValueId};

/// Unsqueeze(ReduceX(x, axes, keepdims=0), axes) = ReduceX(x, axes, keepdims=1). Guards:
/// the reduction's axes are explicit and equal (normalised) to the Unsqueeze's; x's rank
/// is known; the reduced result feeds only the Unsqueeze.
pub struct ReduceUnsqueeze;

/// The reduced axes of a Reduce node: attribute, or constant input from the opset that
/// moved them (13 for ReduceSum, 18 for the others).
fn reduce_axes(g: &Graph, n: NodeId, opset: i64) -> Option<Vec<i64>> {
    let node = g.node(n);
    let moved = if node.op() == "ReduceSum" { 13 } else { 18 };
    let a = if opset >= moved {
        const_ints(g, node.input(1))?
    } else {
        node.attr("axes")?.ints.to_vec()
    };
    (!a.is_empty()).then_some(a)
}

fn normalise(axes: &[i64], rank: usize) -> Vec<i64> {
    let mut v: Vec<i64> = axes
        .iter()
        .map(|a| if *a < 0 { a + rank as i64 } else { *a })
        .collect();
    v.sort_unstable();
    v
}

impl Rule for ReduceUnsqueeze {
    fn name(&self) -> &'static str {
        "reduce-unsqueeze"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let un = g.node(n);
        if !is_op(un, "Unsqueeze") {
            return None;
        }
        let (r, y) = (un.input(0)?, un.output(0)?);
        let (red, _) = g.value(r).producer()?;
        let rnode = g.node(red);
        if !rnode.op().starts_with("Reduce") || !rnode.domain().is_empty() || !single_use(g, r) {
            return None;
        }
        if rnode.attr("keepdims").and_then(|a| a.i) != Some(0) {
            return None;
        }
        let rank = dims(g, rnode.input(0)?)?.len();
        let raxes = normalise(&reduce_axes(g, red, cx.opset)?, rank);
        let uaxes = if cx.opset < 13 {
            un.attr("axes")?.ints.to_vec()
        } else {
            const_ints(g, un.input(1))?
        };
        if normalise(&uaxes, rank) != raxes {
            return None;
        }
        Some(Box::new(move |g: &mut Graph| {
            g.node_mut(red).set_attr(Attribute::int("keepdims", 1));
            crate::edit::bypass(g, n, y, r)
        }))
    }
}

/// Concat(a, Concat(b, c), d) along one axis = Concat(a, b, c, d). Guard: the inner Concat
/// has the same axis and its result feeds only the outer one.
pub struct ConcatChain;

impl Rule for ConcatChain {
    fn name(&self) -> &'static str {
        "concat-chain"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Concat") {
            return None;
        }
        let axis = outer.attr("axis")?.i?;
        let rank = dims(g, outer.output(0)?)?.len() as i64;
        let norm = |a: i64| if a < 0 { a + rank } else { a };
        let (slot, inner) = outer.inputs().iter().enumerate().find_map(|(i, v)| {
            let v = (*v)?;
            let (p, _) = g.value(v).producer()?;
            let pn = g.node(p);
            let same = is_op(pn, "Concat") && pn.attr("axis")?.i.map(norm) == Some(norm(axis));
            (same && single_use(g, v)).then_some((i, p))
        })?;
        let mut ins: Vec<Option<ValueId>> = outer.inputs().to_vec();
        let inner_ins: Vec<Option<ValueId>> = g.node(inner).inputs().to_vec();
        ins.splice(slot..=slot, inner_ins);
        Some(Box::new(move |g: &mut Graph| {
            for (i, v) in ins.iter().enumerate() {
                g.set_input(n, i, *v);
            }
            g.remove_node(inner);
            Ok(())
        }))
    }
}
