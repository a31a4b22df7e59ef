//! `whittle dump --cost`: one row per node with MACs, params, output bytes, share of MACs.

use crate::cli::SortKey;
use crate::human;
use std::fmt::Write;
use whittle_ir::Model;
use whittle_ir::cost::{NodeCost, graph_costs};

/// The value a row sorts by (unknown costs sort last).
fn key(c: &NodeCost, k: SortKey) -> i128 {
    let v = |p: &Option<whittle_ir::infer::Poly>| {
        p.as_ref().and_then(|p| p.as_const()).map_or(-1, i128::from)
    };
    match k {
        SortKey::Macs => v(&c.macs),
        SortKey::Flops => v(&c.flops),
        SortKey::Params => c.params as i128,
        SortKey::Bytes => v(&c.out_bytes),
        SortKey::Order => 0,
    }
}

pub fn render(m: &Model, sort: SortKey) -> String {
    let g = &m.graph;
    let mut costs = graph_costs(g);
    if sort != SortKey::Order {
        costs.sort_by_key(|c| std::cmp::Reverse(key(c, sort)));
    }
    let total: Option<i64> = costs
        .iter()
        .try_fold(0i64, |acc, c| c.macs.as_ref()?.as_const().map(|m| acc + m));
    let mut out = format!(
        "{:<40} {:<18} {:>10} {:>7} {:>10} {:>10}\n",
        "node", "op", "MACs", "%MACs", "params", "out bytes"
    );
    for c in &costs {
        let node = g.node(c.node);
        let share = match (total, c.macs.as_ref().and_then(|p| p.as_const())) {
            (Some(t), Some(m)) if t > 0 => format!("{:.1}%", 100.0 * m as f64 / t as f64),
            _ => String::new(),
        };
        let bytes = c.out_bytes.as_ref().map_or_else(
            || "?".into(),
            |p| match p.as_const() {
                Some(b) => human::bytes(b as u64),
                None => human::poly(p),
            },
        );
        let _ = writeln!(
            out,
            "{:<40} {:<18} {:>10} {:>7} {:>10} {:>10}",
            truncate(&node.label(), 40),
            truncate(&whittle_ir::stats::op_key(node), 18),
            human::opt_poly(c.macs.as_ref()),
            share,
            human::count(c.params as f64),
            bytes
        );
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}
