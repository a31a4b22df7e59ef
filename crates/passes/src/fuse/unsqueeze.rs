//! Consecutive `Unsqueeze`s become one.

use crate::guard::{const_ints, dims, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{Graph, NodeId, Slot, Tensor};

/// Unsqueeze(Unsqueeze(x, a), b) = Unsqueeze(x, c), where c lists the positions of every
/// inserted axis in the final shape. Guards: x's rank is known, both axes lists are known
/// constants (or attributes before opset 13), the inner result is read only by
/// Unsqueezes (so it disappears once they are all rewritten) and is not a graph output.
pub struct UnsqueezeChain;

/// Axes of an Unsqueeze: the attribute before opset 13, the constant input after.
fn axes(g: &Graph, n: NodeId, opset: i64) -> Option<Vec<i64>> {
    let node = g.node(n);
    if opset < 13 {
        node.attr("axes").map(|a| a.ints.to_vec())
    } else {
        const_ints(g, node.input(1))
    }
}

/// Inserts unit axes at `axes` (normalised to the output rank) into `marks`.
fn insert(marks: &mut Vec<bool>, axes: &[i64]) -> Option<()> {
    let r = (marks.len() + axes.len()) as i64;
    let mut at: Vec<usize> = axes
        .iter()
        .map(|a| {
            let a = if *a < 0 { a + r } else { *a };
            (0..r).contains(&a).then_some(a as usize)
        })
        .collect::<Option<_>>()?;
    at.sort_unstable();
    at.dedup();
    if at.len() != axes.len() {
        return None;
    }
    for a in at {
        marks.insert(a, true);
    }
    Some(())
}

impl Rule for UnsqueezeChain {
    fn name(&self) -> &'static str {
        "unsqueeze-chain"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Unsqueeze") {
            return None;
        }
        let t = outer.input(0)?;
        let (inner, _) = g.value(t).producer()?;
        // Every reader of the inner result must be an Unsqueeze: each folds the inner
        // axes in, and the inner node dies with its last reader.
        let all_unsqueeze = g
            .value(t)
            .uses()
            .iter()
            .all(|u| is_op(g.node(u.node), "Unsqueeze") && u.slot == Slot::Input(0));
        if !is_op(g.node(inner), "Unsqueeze") || g.is_output(t) || !all_unsqueeze {
            return None;
        }
        let last_reader = single_use(g, t);
        let x = g.node(inner).input(0)?;
        let rank = dims(g, x)?.len();
        let mut marks = vec![false; rank];
        insert(&mut marks, &axes(g, inner, cx.opset)?)?;
        insert(&mut marks, &axes(g, n, cx.opset)?)?;
        let all: Vec<i64> = marks
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(|(i, _)| i as i64)
            .collect();
        let opset = cx.opset;
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 0, Some(x));
            if opset < 13 {
                g.node_mut(n).set_attr(Attribute::ints("axes", all));
            } else {
                let len = all.len() as i64;
                let c = g.add_initializer("unsqueeze_axes", Tensor::from_i64(vec![len], &all));
                g.set_input(n, 1, Some(c));
            }
            if last_reader {
                g.remove_node(inner);
            }
            Ok(())
        }))
    }
}
