//! Name scoping across nested graphs: values a subgraph reads from its enclosing graphs
//! are marked outer, and the node owning the subgraph captures them. Shared by the ONNX
//! importer and the text parser.

use crate::error::IrError;
use crate::graph::{Graph, NodeId, ValueId};

impl Graph {
    /// Values read (or output) but defined nowhere in this graph.
    pub fn undefined_values(&self) -> Vec<ValueId> {
        self.value_ids()
            .filter(|v| {
                let val = self.value(*v);
                val.producer().is_none()
                    && val.initializer().is_none()
                    && !val.is_sparse_initializer()
                    && !self.inputs().contains(v)
                    && !val.is_outer()
                    && (!val.uses().is_empty() || self.is_output(*v))
            })
            .collect()
    }

    /// Resolves undefined values: in a nested graph they are read from the enclosing
    /// scope; in a main graph the first one is an error naming its reader.
    pub fn resolve_scope(&mut self, nested: bool) -> Result<(), IrError> {
        for v in self.undefined_values() {
            if nested {
                self.mark_outer(v);
                continue;
            }
            let val = self.value(v);
            return Err(match val.uses().first() {
                Some(u) => {
                    let node = self.node(u.node);
                    IrError::Undefined {
                        node: node.label(),
                        op: node.op().to_string(),
                        value: val.name().to_string(),
                    }
                }
                None => IrError::UndefinedOutput {
                    value: val.name().to_string(),
                },
            });
        }
        Ok(())
    }

    /// In this nested graph (and those nested in it), reads of the enclosing scope's
    /// value `old` become reads of `new`: what the enclosing graph does when it replaces
    /// a value a subgraph captures. A local value already named `new` is renamed first,
    /// with the nested graphs that read it; one read from outside too is merged.
    pub fn rename_outer(&mut self, old: &str, new: &str) {
        if old == new {
            return;
        }
        let Some(v) = self.find(old).filter(|v| self.value(*v).is_outer()) else {
            return;
        };
        if let Some(there) = self.find(new) {
            if self.value(there).is_outer() {
                self.replace_all_uses(v, there);
                return;
            }
            let fresh = self.fresh_name(new);
            self.rename_with_readers(there, &fresh);
        }
        self.rename_with_readers(v, new);
    }

    /// Renames `v` to the free `name`, and the references to it by name in the subgraphs
    /// of the nodes that capture it.
    fn rename_with_readers(&mut self, v: ValueId, name: &str) {
        let old = self.value(v).name().to_string();
        let holders: Vec<NodeId> = self
            .value(v)
            .uses()
            .iter()
            .filter(|u| matches!(u.slot, crate::graph::Slot::Capture(_)))
            .map(|u| u.node)
            .collect();
        for n in holders {
            self.rename_in_subgraphs(n, &old, name);
        }
        // The name is free: `rename_outer` made it so.
        let _ = self.rename_value(v, name);
    }

    /// Makes node `id` capture exactly the values its subgraphs read from outside them.
    pub fn capture_outer(&mut self, id: NodeId) {
        let mut outer: Vec<String> = Vec::new();
        for g in self.node(id).attributes.iter().flat_map(|a| a.subgraphs()) {
            for name in g.outer_names() {
                if !outer.contains(&name) {
                    outer.push(name);
                }
            }
        }
        if !outer.is_empty() || !self.node(id).captures().is_empty() {
            let captures = outer.iter().map(|s| self.intern(s)).collect();
            self.set_captures(id, captures);
        }
    }
}
