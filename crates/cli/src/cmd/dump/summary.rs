//! `whittle dump --summary` as text.

use super::Loaded;
use crate::human;
use std::fmt::Write;
use whittle_ir::stats::ModelStats;
use whittle_ir::text::{name, type_text};
use whittle_ir::{Graph, Model, ValueId};

/// (domain, version) of each opset import, the default domain spelled `ai.onnx`.
pub fn opset_pairs(m: &Model) -> Vec<(String, i64)> {
    m.opset_imports
        .iter()
        .map(|o| {
            let d = if o.domain().is_empty() {
                "ai.onnx"
            } else {
                o.domain()
            };
            (d.to_string(), o.version.unwrap_or(0))
        })
        .collect()
}

/// The header lines: IR version, opsets, producer.
pub fn header(m: &Model) -> String {
    let opsets: Vec<String> = opset_pairs(m)
        .iter()
        .map(|(d, v)| format!("{d}={v}"))
        .collect();
    format!(
        "ir_version: {}\nopsets: {}\nproducer: {} {}\n",
        m.ir_version.unwrap_or(0),
        opsets.join(", "),
        m.producer_name.as_deref().unwrap_or("?"),
        m.producer_version.as_deref().unwrap_or("")
    )
}

/// `  name: f32[batch,3,224,224]` for each input (not initializer-backed) or output.
pub fn io_lines(g: &Graph, ids: &[ValueId]) -> String {
    ids.iter()
        .filter(|v| g.value(**v).initializer().is_none())
        .map(|v| {
            format!(
                "  {}: {}\n",
                name(g.value(*v).name()),
                type_text(g.value(*v).info.ty.as_ref())
            )
        })
        .collect()
}

pub fn render(l: &Loaded) -> String {
    let m = &l.model;
    let s = ModelStats::of(m);
    let mut out = header(m);
    let _ = writeln!(out, "file size: {}", human::bytes(l.file_size));
    out += &format!("inputs:\n{}", io_lines(&m.graph, m.graph.inputs()));
    out += &format!("outputs:\n{}", io_lines(&m.graph, m.graph.outputs()));
    let _ = writeln!(
        out,
        "nodes: {} (+{} in subgraphs)",
        s.nodes, s.subgraph_nodes
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>6} {:>10} {:>10}",
        "op", "count", "MACs", "FLOPs"
    );
    for (op, n) in &s.op_counts {
        let macs = s.macs_by_op.get(op).map_or_else(String::new, human::poly);
        let flops = s.flops_by_op.get(op).map_or_else(String::new, human::poly);
        let _ = writeln!(out, "  {op:<28} {n:>6} {macs:>10} {flops:>10}");
    }
    let _ = writeln!(
        out,
        "params: {} ({})",
        human::count(s.params as f64),
        s.params
    );
    let by: Vec<String> = s
        .initializer_bytes
        .iter()
        .map(|(t, b)| format!("{t} {}", human::bytes(*b)))
        .collect();
    let _ = writeln!(
        out,
        "initializer bytes: {} ({})",
        human::bytes(s.initializer_total()),
        by.join(", ")
    );
    let _ = writeln!(out, "MACs: {}", human::opt_poly(s.macs.as_ref()));
    let _ = writeln!(out, "FLOPs: {}", human::opt_poly(s.flops.as_ref()));
    if !s.unknown_cost_nodes.is_empty() {
        let _ = writeln!(
            out,
            "  cost unknown for {} nodes (unknown dims), e.g. {}",
            s.unknown_cost_nodes.len(),
            s.unknown_cost_nodes[0]
        );
    }
    let dd = if s.dynamic_dims.is_empty() {
        "none".to_string()
    } else {
        s.dynamic_dims.join(", ")
    };
    let _ = writeln!(out, "dynamic dims: {dd}");
    if !s.largest.is_empty() {
        let _ = writeln!(out, "largest tensors:");
        for (n, t, b) in &s.largest {
            let _ = writeln!(out, "  {:<40} {:<24} {}", name(n), t, human::bytes(*b));
        }
    }
    out
}
