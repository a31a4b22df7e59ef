//! `whittle dump --format dot`: Graphviz with one box per op, weights folded into their
//! node's label, and value shapes on the edges.

use std::fmt::Write;
use whittle_ir::text::type_text;
use whittle_ir::{Dim, Graph, Model, NodeId, Type};

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn weight_line(g: &Graph, v: whittle_ir::ValueId) -> Option<String> {
    let t = g.constant(v)?;
    let ty = Type::tensor(t.dtype(), t.dims.iter().map(|d| Dim::Known(*d)));
    Some(type_text(Some(&ty)))
}

pub fn render(m: &Model) -> String {
    let g = &m.graph;
    let mut out = String::from(
        "digraph model {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    let id = |n: NodeId| format!("n{}", n.index());
    for v in g
        .inputs()
        .iter()
        .filter(|v| g.value(**v).initializer().is_none())
    {
        let val = g.value(*v);
        let _ = writeln!(
            out,
            "  \"in:{}\" [shape=ellipse, label=\"{}\\n{}\"];",
            esc(val.name()),
            esc(val.name()),
            esc(&type_text(val.info.ty.as_ref()))
        );
    }
    let order = g
        .nodes_in_order()
        .unwrap_or_else(|_| g.node_ids().collect());
    for n in &order {
        let node = g.node(*n);
        let mut label = esc(node.op());
        for w in node
            .inputs()
            .iter()
            .flatten()
            .filter_map(|v| weight_line(g, *v))
        {
            label += &format!("\\n{}", esc(&w));
        }
        let _ = writeln!(
            out,
            "  {} [label=\"{label}\", tooltip=\"{}\"];",
            id(*n),
            esc(&node.label())
        );
        for v in node.inputs().iter().flatten() {
            let val = g.value(*v);
            if g.constant(*v).is_some() {
                continue;
            }
            let from = match val.producer() {
                Some((p, _)) => id(p),
                None if g.inputs().contains(v) => format!("\"in:{}\"", esc(val.name())),
                None => continue,
            };
            let _ = writeln!(
                out,
                "  {from} -> {} [label=\"{}\"];",
                id(*n),
                esc(&type_text(val.info.ty.as_ref()))
            );
        }
    }
    for v in g.outputs() {
        let val = g.value(*v);
        let _ = writeln!(
            out,
            "  \"out:{}\" [shape=ellipse, label=\"{}\\n{}\"];",
            esc(val.name()),
            esc(val.name()),
            esc(&type_text(val.info.ty.as_ref()))
        );
        if let Some((p, _)) = val.producer() {
            let _ = writeln!(out, "  {} -> \"out:{}\";", id(p), esc(val.name()));
        }
    }
    out.push_str("}\n");
    out
}
