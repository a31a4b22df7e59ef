//! `dead-code`: nodes whose results nothing reads, and initializers nothing reads.

use crate::pass::{Grant, Pass, PassCx, PassError, anchor};
use whittle_ir::{Graph, NodeId};

/// Removes nodes none of whose outputs is read (by a node, a subgraph, or as a graph
/// output), repeatedly, then initializers nothing reads (with the graph input that only
/// shadows one, if any). Other graph inputs are the model's interface and stay; so do
/// nodes without outputs (nothing to decide on).
pub struct DeadCode;

fn is_dead(g: &Graph, n: NodeId) -> bool {
    let outs = g.node(n).outputs();
    !outs.is_empty()
        && outs
            .iter()
            .flatten()
            .all(|v| g.value(*v).uses().is_empty() && !g.is_output(*v))
}

impl Pass for DeadCode {
    /// Safe over any encoding: it only removes what nothing reads, or merges equals.
    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Cleanup
    }

    fn name(&self) -> &'static str {
        "dead-code"
    }

    fn description(&self) -> &'static str {
        "remove nodes and initializers that no output depends on"
    }

    fn run(&self, g: &mut Graph, _is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        let mut changed = false;
        let order = g.nodes_in_order().map_err(|source| PassError::Ir {
            pass: "dead-code",
            source,
        })?;
        // Reverse topological order: a node's readers are visited before it.
        for n in order.into_iter().rev() {
            if !is_dead(g, n) {
                continue;
            }
            match cx.grant("dead-code", "dead-node", &anchor(g, n)) {
                Grant::Yes => {}
                Grant::Denied => continue,
                Grant::Spent => return Ok(changed),
            }
            tracing::debug!(node = %g.node(n).label(), "dead-code: removed");
            cx.begin_edit(g);
            g.remove_node(n);
            cx.end_edit(g);
            changed = true;
        }
        // Unused initializers, including graph inputs that only shadow one (an optional
        // input nobody reads); both go.
        let unused: Vec<_> = g
            .initializers()
            .iter()
            .copied()
            .filter(|v| g.value(*v).uses().is_empty() && !g.is_output(*v))
            .collect();
        for v in unused {
            match cx.grant("dead-code", "unused-initializer", g.value(v).name()) {
                Grant::Yes => {}
                Grant::Denied => continue,
                Grant::Spent => return Ok(changed),
            }
            tracing::debug!(initializer = g.value(v).name(), "dead-code: removed");
            cx.begin_edit(g);
            if g.inputs().contains(&v) {
                g.remove_input(v);
            }
            g.remove_initializer(v);
            cx.end_edit(g);
            changed = true;
        }
        Ok(changed)
    }
}
