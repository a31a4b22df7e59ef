//! `cse`: common subexpressions. Two nodes with the same op, attributes and inputs
//! compute the same values; the later one's readers use the earlier one's outputs.

use crate::guard::RANDOM_OPS;
use crate::pass::{Grant, Pass, PassCx, PassError, anchor};
use std::collections::HashMap;
use whittle_ir::{Graph, NodeId, ValueId};

/// Merges duplicate nodes. Kept apart: nodes with subgraphs, random ops, nodes without
/// outputs, and duplicates whose outputs are graph outputs (their names are the interface).
pub struct Cse;

/// What makes two nodes compute the same thing: domain, op, overload, the attributes'
/// fingerprint (computed once per attribute list, so a tree ensemble's hundreds of MB
/// are hashed once, not formatted every run), inputs and output count. Nodes with equal
/// keys are compared in full before they merge ([`same`]).
type Key = (String, Option<String>, u64, Vec<Option<ValueId>>, usize);

fn key(g: &Graph, n: NodeId) -> Option<Key> {
    let node = g.node(n);
    if node.has_subgraphs() || node.outputs().is_empty() || RANDOM_OPS.contains(&node.op()) {
        return None;
    }
    let op = format!("{}|{}", node.domain(), node.op());
    let fingerprint = node.attributes.fingerprint();
    let inputs = node.inputs().to_vec();
    Some((
        op,
        node.overload.clone(),
        fingerprint,
        inputs,
        node.outputs().len(),
    ))
}

/// Whether two nodes with one key have equal attributes (a fingerprint can collide).
fn same(g: &Graph, a: NodeId, b: NodeId) -> bool {
    g.node(a).attributes == g.node(b).attributes
}

impl Pass for Cse {
    /// Safe over any encoding: it only removes what nothing reads, or merges equals.
    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Cleanup
    }

    fn name(&self) -> &'static str {
        "cse"
    }

    fn description(&self) -> &'static str {
        "merge nodes that compute the same thing from the same inputs"
    }

    fn run(&self, g: &mut Graph, _is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        let order = g.nodes_in_order().map_err(|source| PassError::Ir {
            pass: "cse",
            source,
        })?;
        let mut seen: HashMap<Key, NodeId> = HashMap::new();
        let mut changed = false;
        // Topological order: a duplicate's inputs were already merged when it is reached.
        for n in order {
            let Some(k) = key(g, n) else { continue };
            let Some(&first) = seen.get(&k) else {
                seen.insert(k, n);
                continue;
            };
            if !same(g, first, n) {
                continue;
            }
            let outs: Vec<Option<ValueId>> = g.node(n).outputs().to_vec();
            let keep: Vec<Option<ValueId>> = g.node(first).outputs().to_vec();
            let interface = outs.iter().flatten().any(|v| g.is_output(*v));
            let shapes_differ = outs
                .iter()
                .zip(&keep)
                .any(|(a, b)| a.is_some() != b.is_some());
            if interface || shapes_differ {
                continue;
            }
            match cx.grant("cse", "cse", &anchor(g, n)) {
                Grant::Yes => {}
                Grant::Denied => continue,
                Grant::Spent => return Ok(changed),
            }
            cx.begin_edit(g);
            g.remove_node(n);
            for (o, k) in outs.into_iter().zip(keep) {
                if let (Some(o), Some(k)) = (o, k) {
                    g.replace_all_uses(o, k);
                }
            }
            cx.end_edit(g);
            changed = true;
        }
        Ok(changed)
    }
}
