//! A Reshape after any shape-only op: only the last shape matters.

use crate::guard::{const_ints, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Graph, NodeId};

/// Reshape(f(x), s2) = Reshape(x, s2) when f only reshapes (Reshape, Flatten, Squeeze,
/// Unsqueeze) and s2 is a constant whose entries do not refer to the intermediate shape
/// (no 0 copying a dim, unless `allowzero=1` makes 0 literal). Guard: the intermediate
/// feeds only the outer Reshape.
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
        if s2.contains(&0) && !literal_zero {
            return None;
        }
        let x = g.node(inner).input(0)?;
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 0, Some(x));
            g.remove_node(inner);
            Ok(())
        }))
    }
}
