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
