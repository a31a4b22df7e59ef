//! Whole-model statistics for `whittle dump --summary` and reports: op histogram,
//! parameters, initializer bytes by type, MACs and FLOPs, dynamic dims, largest tensors.
//! Reads types and tensor headers only, never tensor data.

use crate::cost::{NodeCost, graph_costs};
use crate::graph::Graph;
use crate::infer::Poly;
use crate::model::Model;
use crate::text::type_text;
use crate::types::{Dim, Type};
use std::collections::BTreeMap;

/// How many of the largest tensors a summary lists.
pub const LARGEST: usize = 5;

/// Statistics of one model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelStats {
    /// Nodes of the main graph.
    pub nodes: usize,
    /// Nodes inside subgraphs (If/Loop/Scan bodies).
    pub subgraph_nodes: usize,
    /// Nodes per op type (`domain:Op` outside the default domain), subgraphs included.
    pub op_counts: BTreeMap<String, usize>,
    /// Elements of all initializers.
    pub params: u64,
    /// Stored bytes of initializers, by element type.
    pub initializer_bytes: BTreeMap<String, u64>,
    /// Total MACs and FLOPs of the main graph (None if some node's cost is unknown).
    pub macs: Option<Poly>,
    pub flops: Option<Poly>,
    /// MACs and FLOPs per op type (nodes of unknown cost left out).
    pub macs_by_op: BTreeMap<String, Poly>,
    pub flops_by_op: BTreeMap<String, Poly>,
    /// Nodes whose cost could not be computed (unknown dims).
    pub unknown_cost_nodes: Vec<String>,
    /// Symbolic dims left in the inputs and outputs.
    pub dynamic_dims: Vec<String>,
    /// The largest initializers: (name, type, bytes).
    pub largest: Vec<(String, String, u64)>,
}

impl ModelStats {
    /// Statistics of `m` (run inference first for MACs).
    pub fn of(m: &Model) -> ModelStats {
        let mut s = ModelStats::default();
        let g = &m.graph;
        s.nodes = g.node_count();
        count_ops(g, &mut s, true);
        let costs = graph_costs(g);
        s.add_costs(g, &costs);
        s.dynamic_dims = dynamic_dims(g);
        s.largest.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        s.largest.truncate(LARGEST);
        s
    }

    /// Total initializer bytes.
    pub fn initializer_total(&self) -> u64 {
        self.initializer_bytes.values().sum()
    }

    fn add_costs(&mut self, g: &Graph, costs: &[NodeCost]) {
        let mut macs = Some(Poly::constant(0));
        let mut flops = Some(Poly::constant(0));
        for c in costs {
            let op = op_key(g.node(c.node));
            match (&c.macs, &c.flops) {
                (Some(m), Some(f)) => {
                    macs = macs.and_then(|t| t.add(m));
                    flops = flops.and_then(|t| t.add(f));
                    add_to(&mut self.macs_by_op, &op, m);
                    add_to(&mut self.flops_by_op, &op, f);
                }
                _ => {
                    macs = None;
                    flops = None;
                    self.unknown_cost_nodes.push(g.node(c.node).label());
                }
            }
        }
        self.macs_by_op.retain(|_, p| p.as_const() != Some(0));
        self.flops_by_op.retain(|_, p| p.as_const() != Some(0));
        self.macs = macs;
        self.flops = flops;
    }
}

fn add_to(m: &mut BTreeMap<String, Poly>, k: &str, p: &Poly) {
    let e = m.entry(k.to_string()).or_default();
    if let Some(sum) = e.add(p) {
        *e = sum;
    }
}

/// `Conv`, or `com.microsoft:FusedMatMul` outside the default domain.
pub fn op_key(node: &crate::Node) -> String {
    if node.domain().is_empty() {
        node.op().to_string()
    } else {
        format!("{}:{}", node.domain(), node.op())
    }
}

fn count_ops(g: &Graph, s: &mut ModelStats, top: bool) {
    for n in g.node_ids() {
        let node = g.node(n);
        if !top {
            s.subgraph_nodes += 1;
        }
        *s.op_counts.entry(op_key(node)).or_default() += 1;
        for sub in node.attributes.iter().flat_map(|a| a.subgraphs()) {
            count_ops(sub, s, false);
        }
    }
    for v in g.initializers() {
        let val = g.value(*v);
        if let Some(t) = val.initializer() {
            s.params += t.element_count().unwrap_or(0);
            let bytes = t.stored_bytes();
            *s.initializer_bytes
                .entry(t.dtype().short_name())
                .or_default() += bytes;
            let ty = Type::tensor(t.dtype(), t.dims.iter().map(|d| Dim::Known(*d)));
            s.largest
                .push((val.name().to_string(), type_text(Some(&ty)), bytes));
        }
    }
}

fn dynamic_dims(g: &Graph) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in g.inputs().iter().chain(g.outputs()) {
        if g.value(*v).initializer().is_some() {
            continue;
        }
        for d in g
            .value(*v)
            .info
            .ty
            .as_ref()
            .and_then(Type::dims)
            .unwrap_or_default()
        {
            let s = match d {
                Dim::Param(p) => p,
                Dim::Unknown => "?".into(),
                Dim::Known(_) => continue,
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}
