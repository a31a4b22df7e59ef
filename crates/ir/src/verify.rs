//! The invariant checker run after every pass in tests and debug builds.

use crate::error::IrError;
use crate::graph::{Graph, Slot};

impl Graph {
    /// Checks that the graph is well-formed: every value read is defined (here, or in an
    /// enclosing graph for subgraphs), nothing is defined twice, use lists and edges agree
    /// with node inputs, outputs are defined, there is no cycle; then checks subgraphs.
    /// `is_subgraph` allows values read from an enclosing scope.
    pub fn verify(&self, is_subgraph: bool) -> Result<(), IrError> {
        self.nodes_in_order()?;
        for n in self.node_ids() {
            let node = self.node(n);
            for (i, v) in node.inputs().iter().enumerate() {
                let Some(v) = v else { continue };
                let val = self.value(*v);
                let defined = val.producer().is_some()
                    || val.initializer().is_some()
                    || val.is_sparse_initializer()
                    || self.inputs().contains(v)
                    || (is_subgraph && val.is_outer());
                if !defined {
                    return Err(IrError::Undefined {
                        node: node.label(),
                        op: node.op().to_string(),
                        value: val.name().to_string(),
                    });
                }
                if !val
                    .uses()
                    .iter()
                    .any(|u| u.node == n && u.slot == Slot::Input(i as u32))
                {
                    return Err(IrError::Invariant(format!(
                        "use list of '{}' misses node '{}'",
                        val.name(),
                        node.label()
                    )));
                }
            }
            for (i, v) in node.outputs().iter().enumerate() {
                let Some(v) = v else { continue };
                if self.value(*v).producer() != Some((n, i as u32)) {
                    return Err(IrError::Invariant(format!(
                        "value '{}' does not name node '{}' as producer",
                        self.value(*v).name(),
                        node.label()
                    )));
                }
            }
            for a in &node.attributes {
                for g in a.subgraphs() {
                    g.verify(true)?;
                }
            }
        }
        for v in self.value_ids() {
            let val = self.value(v);
            for u in val.uses() {
                let ok = self.contains_node(u.node)
                    && match u.slot {
                        Slot::Input(i) => self.node(u.node).input(i as usize) == Some(v),
                        Slot::Capture(i) => {
                            self.node(u.node).captures().get(i as usize) == Some(&v)
                        }
                    };
                if !ok {
                    return Err(IrError::Invariant(format!("stale use of '{}'", val.name())));
                }
            }
        }
        for o in self.outputs() {
            let val = self.value(*o);
            let defined = val.producer().is_some()
                || val.initializer().is_some()
                || self.inputs().contains(o)
                || (is_subgraph && val.is_outer());
            if !defined {
                return Err(IrError::UndefinedOutput {
                    value: val.name().to_string(),
                });
            }
        }
        Ok(())
    }
}
