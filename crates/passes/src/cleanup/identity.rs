//! `identity`: readers of `Identity(x)` read `x` directly.

use crate::pass::{Grant, Pass, PassCx, PassError, anchor};
use whittle_ir::{Graph, NodeId, ValueId};

/// Removes `Identity` nodes of the default domain. When the result is a graph output, its
/// name is part of the interface: the input takes that name instead, which is only done
/// when the input is a node result of this graph that is not itself an output.
pub struct Identity;

/// Why an Identity node must stay, if it must.
fn guard(g: &Graph, n: NodeId) -> Result<(ValueId, ValueId), &'static str> {
    let node = g.node(n);
    if node.op() != "Identity" || !node.domain().is_empty() {
        return Err("not an Identity");
    }
    let (Some(x), Some(y)) = (node.input(0), node.output(0)) else {
        return Err("missing input or output");
    };
    if g.is_output(y) {
        let xv = g.value(x);
        if g.is_output(x) || xv.producer().is_none() || g.inputs().contains(&x) {
            return Err("output name must stay and the input cannot take it");
        }
    }
    Ok((x, y))
}

impl Pass for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }

    fn description(&self) -> &'static str {
        "remove Identity nodes (readers use the input directly)"
    }

    fn run(&self, g: &mut Graph, _is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        let mut changed = false;
        let err = |source| PassError::Ir {
            pass: "identity",
            source,
        };
        for n in g.nodes_in_order().map_err(err)? {
            let (x, y) = match guard(g, n) {
                Ok(xy) => xy,
                Err(why) => {
                    if g.node(n).op() == "Identity" {
                        tracing::debug!(node = %g.node(n).label(), why, "identity: kept");
                    }
                    continue;
                }
            };
            match cx.grant("identity", "identity", &anchor(g, n)) {
                Grant::Yes => {}
                Grant::Denied => continue,
                Grant::Spent => break,
            }
            let keep_name = g.is_output(y).then(|| g.value(y).name().to_string());
            let info = g.value(y).info.clone();
            cx.begin_edit(g);
            g.remove_node(n);
            g.replace_all_uses(y, x);
            if let Some(name) = keep_name {
                // y is gone from the arena once nothing refers to it; x takes its name
                // and its declared type (the interface's).
                g.rename_value(x, &name).map_err(err)?;
                g.value_mut(x).info = info;
            }
            cx.end_edit(g);
            changed = true;
        }
        Ok(changed)
    }
}
