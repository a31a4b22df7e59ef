//! `whittle dump A B --compare`: two summaries side by side with the differences.

use super::{Loaded, json};
use crate::cli::{DumpArgs, Format};
use crate::human;
use std::collections::BTreeSet;
use std::fmt::Write;
use whittle_ir::infer::Poly;
use whittle_ir::stats::ModelStats;

pub fn render(args: &DumpArgs, x: &Loaded, y: &Loaded) -> anyhow::Result<String> {
    if args.format == Format::Json {
        return json::compare(x, y);
    }
    let (sx, sy) = (ModelStats::of(&x.model), ModelStats::of(&y.model));
    let mut out = format!(
        "{:<32} {:>12} {:>12} {:>12}\n",
        "",
        short(&args.inputs[0]),
        short(&args.inputs[1]),
        "change"
    );
    let mut row = |label: &str, p: String, q: String, d: String| {
        let _ = writeln!(out, "{label:<32} {p:>12} {q:>12} {d:>12}");
    };
    let ops: BTreeSet<&String> = sx.op_counts.keys().chain(sy.op_counts.keys()).collect();
    for op in ops {
        let (p, q) = (
            sx.op_counts.get(op).copied().unwrap_or(0),
            sy.op_counts.get(op).copied().unwrap_or(0),
        );
        row(op, p.to_string(), q.to_string(), diff(p as i64, q as i64));
    }
    row(
        "nodes",
        sx.nodes.to_string(),
        sy.nodes.to_string(),
        diff(sx.nodes as i64, sy.nodes as i64),
    );
    row(
        "params",
        human::count(sx.params as f64),
        human::count(sy.params as f64),
        ratio(sx.params as f64, sy.params as f64),
    );
    let (bx, by) = (sx.initializer_total(), sy.initializer_total());
    row(
        "initializer bytes",
        human::bytes(bx),
        human::bytes(by),
        ratio(bx as f64, by as f64),
    );
    row(
        "file size",
        human::bytes(x.file_size),
        human::bytes(y.file_size),
        ratio(x.file_size as f64, y.file_size as f64),
    );
    row(
        "MACs",
        human::opt_poly(sx.macs.as_ref()),
        human::opt_poly(sy.macs.as_ref()),
        poly_ratio(sx.macs.as_ref(), sy.macs.as_ref()),
    );
    row(
        "FLOPs",
        human::opt_poly(sx.flops.as_ref()),
        human::opt_poly(sy.flops.as_ref()),
        poly_ratio(sx.flops.as_ref(), sy.flops.as_ref()),
    );
    Ok(out)
}

fn short(p: &std::path::Path) -> String {
    let s = p.file_name().map_or_else(
        || p.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    if s.chars().count() > 12 {
        s.chars().take(11).collect::<String>() + "…"
    } else {
        s
    }
}

fn diff(p: i64, q: i64) -> String {
    match q - p {
        0 => String::new(),
        d => format!("{d:+}"),
    }
}

fn ratio(p: f64, q: f64) -> String {
    if p == q || p == 0.0 {
        String::new()
    } else {
        format!("{:+.1}%", 100.0 * (q - p) / p)
    }
}

fn poly_ratio(p: Option<&Poly>, q: Option<&Poly>) -> String {
    match (p.and_then(Poly::as_const), q.and_then(Poly::as_const)) {
        (Some(p), Some(q)) => ratio(p as f64, q as f64),
        _ => String::new(),
    }
}
