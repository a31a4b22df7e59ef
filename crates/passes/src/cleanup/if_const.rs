//! `If` with a constant condition: the branch that will run replaces the node.

use crate::edit::forward;
use crate::guard::{constant, is_op};
use crate::rule::{Patch, Rule, RuleCx};
use std::collections::HashMap;
use whittle_ir::{Graph, IrError, NodeId, ValueId};

/// Inlines the taken branch of an `If` whose condition is a constant. Branch values keep
/// their names where the enclosing graph does not use them, and get fresh ones otherwise.
///
/// Guards: the condition is a one-element constant; the branch has no inputs and as many
/// outputs as the If; every outer name it reads exists here; a branch with nested
/// subgraphs is only inlined when none of its names needs renaming (nested graphs refer
/// to them by name).
pub struct InlineConstantIf;

fn taken_branch(g: &Graph, n: NodeId) -> Option<Graph> {
    let node = g.node(n);
    let t = constant(g, node.input(0))?;
    let b = t.le_bytes().ok()?;
    if b.len() != 1 {
        return None;
    }
    let name = if b[0] != 0 {
        "then_branch"
    } else {
        "else_branch"
    };
    node.attr(name)?.g.as_deref().cloned()
}

impl Rule for InlineConstantIf {
    fn name(&self) -> &'static str {
        "inline-constant-if"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        if !is_op(g.node(n), "If") {
            return None;
        }
        let b = taken_branch(g, n)?;
        let outs: Vec<ValueId> = g.node(n).outputs().iter().flatten().copied().collect();
        if !b.inputs().is_empty()
            || b.outputs().len() != g.node(n).outputs().len()
            || outs.len() != b.outputs().len()
        {
            return None;
        }
        let locals: Vec<ValueId> = b.value_ids().filter(|v| !b.value(*v).is_outer()).collect();
        if b.value_ids()
            .any(|v| b.value(v).is_outer() && g.find(b.value(v).name()).is_none())
        {
            return None;
        }
        let nested = b.node_ids().any(|m| b.node(m).has_subgraphs());
        if nested && locals.iter().any(|v| g.find(b.value(*v).name()).is_some()) {
            return None;
        }
        Some(Box::new(move |g: &mut Graph| inline(g, n, &b, &outs)))
    }
}

/// Copies `b`'s initializers and nodes into `g` next to the If, then forwards the If's
/// outputs to the copied branch outputs.
fn inline(g: &mut Graph, n: NodeId, b: &Graph, outs: &[ValueId]) -> Result<(), IrError> {
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let place = |g: &mut Graph, bv: ValueId| -> ValueId {
        let name = b.value(bv).name();
        if b.value(bv).is_outer() {
            return g.find(name).unwrap_or_else(|| g.intern(name));
        }
        if g.find(name).is_none() {
            g.intern(name)
        } else {
            g.fresh_value(name)
        }
    };
    for v in b.initializers() {
        let pv = place(g, *v);
        if let Some(mut t) = b.value(*v).initializer().cloned() {
            t.name = Some(g.value(pv).name().to_string());
            g.set_initializer(pv, t);
        }
        map.insert(*v, pv);
    }
    for m in b.nodes_in_order()? {
        let node = b.node(m);
        let mut get = |g: &mut Graph, v: Option<ValueId>| -> Option<ValueId> {
            let v = v?;
            Some(*map.entry(v).or_insert_with(|| place(g, v)))
        };
        let ins: Vec<Option<ValueId>> = node.inputs().iter().map(|v| get(g, *v)).collect();
        let os: Vec<Option<ValueId>> = node.outputs().iter().map(|v| get(g, *v)).collect();
        let mut copy = node.clone();
        copy.name = node.name.clone();
        let id = g.add_node_at(n, strip(copy), ins, os)?;
        g.capture_outer(id);
    }
    let srcs: Vec<ValueId> = b
        .outputs()
        .iter()
        .map(|v| *map.entry(*v).or_insert_with(|| place(g, *v)))
        .collect();
    g.remove_node(n);
    for (y, x) in outs.iter().zip(srcs) {
        forward(g, *y, x)?;
    }
    Ok(())
}

/// A node's op and attributes without the branch graph's wiring.
fn strip(node: whittle_ir::Node) -> whittle_ir::Node {
    let mut fresh = whittle_ir::Node::new(node.op());
    fresh.name = node.name;
    fresh.domain = node.domain;
    fresh.overload = node.overload;
    fresh.doc_string = node.doc_string;
    fresh.attributes = node.attributes;
    fresh.metadata_props = node.metadata_props;
    fresh
}
