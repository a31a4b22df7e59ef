//! Model summaries for reports: node counts per op type, initializer count and bytes.

use std::collections::BTreeMap;
use whittle_ir::{Graph, Model};

/// Counts that describe a model's size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub nodes: usize,
    pub ops: BTreeMap<String, usize>,
    pub initializers: usize,
    pub initializer_bytes: u64,
}

impl Summary {
    /// The summary of a model's main graph, counting subgraph nodes too.
    pub fn of(m: &Model) -> Summary {
        let mut s = Summary::default();
        s.add_graph(&m.graph);
        s
    }

    fn add_graph(&mut self, g: &Graph) {
        for n in g.node_ids() {
            let node = g.node(n);
            self.nodes += 1;
            let key = if node.domain().is_empty() {
                node.op().to_string()
            } else {
                format!("{}:{}", node.domain(), node.op())
            };
            *self.ops.entry(key).or_default() += 1;
            for sub in node.attributes.iter().flat_map(|a| a.subgraphs()) {
                self.add_graph(sub);
            }
        }
        for v in g.initializers() {
            if let Some(t) = g.value(*v).initializer() {
                self.initializers += 1;
                self.initializer_bytes += t.stored_bytes();
            }
        }
    }
}
