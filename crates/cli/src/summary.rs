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

    /// A before/after table: one row per op type whose count changed or exists, then totals.
    pub fn table(before: &Summary, after: &Summary) -> String {
        Summary::table_with(before, after, ["before", "after"])
    }

    /// [`Summary::table`] with other column headings.
    pub fn table_with(before: &Summary, after: &Summary, heads: [&str; 2]) -> String {
        let mut rows = vec![format!("{:<28} {:>8} {:>8}", "", heads[0], heads[1])];
        let ops: std::collections::BTreeSet<&String> =
            before.ops.keys().chain(after.ops.keys()).collect();
        for op in ops {
            let b = before.ops.get(op).copied().unwrap_or(0);
            let a = after.ops.get(op).copied().unwrap_or(0);
            rows.push(format!("{op:<28} {b:>8} {a:>8}"));
        }
        rows.push(format!(
            "{:<28} {:>8} {:>8}",
            "nodes", before.nodes, after.nodes
        ));
        rows.push(format!(
            "{:<28} {:>8} {:>8}",
            "initializers", before.initializers, after.initializers
        ));
        rows.push(format!(
            "{:<28} {:>8} {:>8}",
            "initializer bytes", before.initializer_bytes, after.initializer_bytes
        ));
        rows.join("\n")
    }
}
