//! SiLU as exporters write it, x · Sigmoid(x), becomes the standard `Swish` (opset ≥ 24,
//! alpha 1): one op instead of two, which ONNX Runtime and tract both run.

use crate::guard::{is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Graph, Node, NodeId};

/// Anchored at `Mul(x, s)` (either order) with s = `Sigmoid(x)`. Guards: opset ≥ 24; the
/// Sigmoid's result is read by this Mul alone and is no graph output.
pub struct SwishPattern;

impl Rule for SwishPattern {
    fn name(&self) -> &'static str {
        "swish"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let mul = g.node(n);
        if cx.opset < 24 || !is_op(mul, "Mul") {
            return None;
        }
        let (a, b, y) = (mul.input(0)?, mul.input(1)?, mul.output(0)?);
        let (sig, x) = [(b, a), (a, b)].into_iter().find_map(|(s, x)| {
            let (p, _) = g.value(s).producer()?;
            let ok =
                is_op(g.node(p), "Sigmoid") && g.node(p).input(0) == Some(x) && single_use(g, s);
            ok.then_some((p, x))
        })?;
        let name = g.node(sig).name.clone();
        Some(Box::new(move |g: &mut Graph| {
            g.remove_node(n);
            let mut op = Node::new("Swish");
            op.name = name;
            g.add_node_at(sig, op, vec![Some(x)], vec![Some(y)])?;
            g.remove_node(sig);
            Ok(())
        }))
    }
}
