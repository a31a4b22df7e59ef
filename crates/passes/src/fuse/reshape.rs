//! A Reshape after any shape-only op: only the last shape matters.

use crate::guard::{const_ints, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Graph, NodeId, Tensor};

/// Reshape(f(x), s2) = Reshape(x, s2) when f only reshapes (Reshape, Flatten, Squeeze,
/// Unsqueeze) and s2 is a constant whose entries do not refer to the intermediate shape
/// (no 0 copying a dim, unless `allowzero=1` makes 0 literal). When f is a Reshape with a
/// constant target s1, a 0 in s2 is s1's entry at that index ([`through_reshape`]).
/// Guard: the intermediate feeds only the outer Reshape.
pub struct ReshapeChain;

impl Rule for ReshapeChain {
    fn name(&self) -> &'static str {
        "reshape-chain"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Reshape") || cx.opset < 5 {
            return None;
        }
        let t = outer.input(0)?;
        let (inner, _) = g.value(t).producer()?;
        let reshapes_only = ["Reshape", "Flatten", "Squeeze", "Unsqueeze"]
            .iter()
            .any(|op| is_op(g.node(inner), op));
        if !reshapes_only || !single_use(g, t) {
            return None;
        }
        let s2 = const_ints(g, outer.input(1))?;
        let literal_zero = outer.attr("allowzero").is_some_and(|a| a.i == Some(1));
        // A 0 copies the intermediate's dim: through a Reshape it is that Reshape's own
        // target entry there.
        let target = match s2.contains(&0) && !literal_zero {
            true => Some(through_reshape(g, inner, &s2)?),
            false => None,
        };
        let x = g.node(inner).input(0)?;
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 0, Some(x));
            if let Some(t) = target {
                let len = t.len() as i64;
                let s = g.add_initializer("reshape_target", Tensor::from_i64(vec![len], &t));
                g.set_input(n, 1, Some(s));
            }
            g.remove_node(inner);
            Ok(())
        }))
    }
}

/// `s2` with each 0 (a dim copied from the intermediate) replaced by the inner Reshape's
/// target entry at that index: a literal size, 0 again (the intermediate copied it from x
/// at the same index), or -1 when s2 has no -1 of its own (then the one unknown dim is
/// the intermediate's, inferred from the same element count). None when `inner` is not a
/// Reshape with a constant target and `allowzero` unset, or an entry copied is past the
/// inner target's end, or a second -1 would appear.
fn through_reshape(g: &Graph, inner: NodeId, s2: &[i64]) -> Option<Vec<i64>> {
    let node = g.node(inner);
    if !is_op(node, "Reshape") || node.attr("allowzero").is_some_and(|a| a.i == Some(1)) {
        return None;
    }
    let s1 = const_ints(g, node.input(1))?;
    let t: Vec<i64> = s2
        .iter()
        .enumerate()
        .map(|(j, d)| match d {
            0 => s1.get(j).copied().filter(|k| *k >= -1),
            d => Some(*d),
        })
        .collect::<Option<_>>()?;
    (t.iter().filter(|d| **d == -1).count() <= 1).then_some(t)
}
