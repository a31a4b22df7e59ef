//! The parts of a report that describe one optimization run: what each pass did, what
//! the lossy steps measured per layer, the op histogram before and after, the graph
//! around each rewrite before and after it, and the verification.

use maud::{Markup, html};
use std::collections::BTreeSet;
use whittle::Summary;
use whittle::job::Outcome;
use whittle_ir::{Graph, Model, NodeId};

/// Rewrites shown with their neighbourhoods (the rest are counted).
const SNIPPETS: usize = 40;

/// Every section about `o`, run on `original`.
pub fn outcome(original: &Model, o: &Outcome) -> Markup {
    html! {
        h2 { "What the passes and steps did" }
        (passes(o))
        (notes(o))
        h2 { "Ops before and after" }
        (histogram_of(&o.before, &o.after))
        h2 { "Rewrites" }
        (rewrites(original, &o.model, o))
        (verification(o))
    }
}

fn passes(o: &Outcome) -> Markup {
    html! {
        table id="passes" {
            thead { tr { th { "pass or step" } th.num { "rewrites" } th.num { "time (ms)" } } }
            tbody {
                @for p in &o.done.passes {
                    tr { td { (p.name) } td.num { (p.rewrites) } td.num { (format!("{:.2}", p.time.as_secs_f64() * 1e3)) } }
                }
            }
        }
        p { "Nodes " (o.done.nodes_before) " → " (o.done.nodes_after) "; initializer bytes "
            (crate::human::bytes(o.done.initializer_bytes_before)) " → "
            (crate::human::bytes(o.done.initializer_bytes_after)) "." }
        @if let Some(rt) = &o.done.runtime { p { "Runtime that measured and judged: " (rt) "." } }
    }
}

/// The lossy steps' per-layer figures: which layers were quantized, kept or pruned, and
/// what each cost.
fn notes(o: &Outcome) -> Markup {
    if o.done.notes.is_empty() {
        return html! {};
    }
    html! {
        h3 { "Per layer: what was kept, quantized or pruned, and what it cost" }
        table id="layers" {
            thead { tr { th { "at" } th { "measured" } } }
            tbody {
                @for (at, note) in &o.done.notes {
                    tr { td { code { (at) } } td { (note) } }
                }
            }
        }
    }
}

pub fn histogram_of(before: &Summary, after: &Summary) -> Markup {
    let ops: BTreeSet<&String> = before.ops.keys().chain(after.ops.keys()).collect();
    let most = before
        .ops
        .values()
        .chain(after.ops.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let bar = |n: usize, class: &str| {
        let w = 240.0 * n as f64 / most as f64;
        html! { svg width="250" height="10" { rect class=(class) width=(format!("{w:.1}")) height="10" {} } }
    };
    html! {
        table id="ops" {
            thead { tr { th { "op" } th.num { "before" } th.num { "after" } th { "" } } }
            tbody {
                @for op in ops {
                    @let (b, a) = (before.ops.get(op).copied().unwrap_or(0), after.ops.get(op).copied().unwrap_or(0));
                    tr {
                        td { (op) } td.num { (b) } td.num { (a) }
                        td { (bar(b, "before")) br; (bar(a, "after")) }
                    }
                }
            }
        }
    }
}

/// The op counts of one model, with bars.
pub fn ops_table(s: &Summary) -> Markup {
    let most = s.ops.values().copied().max().unwrap_or(1).max(1);
    html! {
        table id="ops" {
            thead { tr { th { "op" } th.num { "nodes" } th { "" } } }
            tbody {
                @for (op, n) in &s.ops {
                    tr { td { (op) } td.num { (n) }
                         td { svg width="250" height="10" { rect class="after" width=(format!("{:.1}", 240.0 * *n as f64 / most as f64)) height="10" {} } } }
                }
            }
        }
    }
}

/// Each rewrite with the nodes around its anchor, in the original and in the result.
fn rewrites(original: &Model, after: &Model, o: &Outcome) -> Markup {
    let all = &o.done.rewrites;
    html! {
        p { (all.len()) " rewrites"
            @if all.len() > SNIPPETS { "; the first " (SNIPPETS) " are shown" } "." }
        @for r in all.iter().take(SNIPPETS) {
            details.rewrite {
                summary { code { (r.pass) } " / " code { (r.rule) } " at " code { (r.node) } }
                div.pair {
                    div { h4 { "before" } pre { (around(&original.graph, &r.node)) } }
                    div { h4 { "after" } pre { (around(&after.graph, &r.node)) } }
                }
            }
        }
    }
}

/// The node named `name`, the nodes that feed it and those that read it, one line each.
fn around(g: &Graph, name: &str) -> String {
    let Some(n) = g.node_ids().find(|n| g.node(*n).name() == name) else {
        return format!("(no node named {name})");
    };
    let node = g.node(n);
    let mut ids: Vec<NodeId> = node
        .inputs()
        .iter()
        .flatten()
        .filter_map(|v| g.value(*v).producer().map(|(p, _)| p))
        .collect();
    ids.push(n);
    for v in node.outputs().iter().flatten() {
        ids.extend(g.value(*v).uses().iter().map(|u| u.node));
    }
    let mut seen = BTreeSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(format!("{id:?}")))
        .map(|id| line(g, id, id == n))
        .collect::<Vec<_>>()
        .join("\n")
}

fn line(g: &Graph, n: NodeId, anchor: bool) -> String {
    let node = g.node(n);
    let names = |vs: &[Option<whittle_ir::ValueId>]| {
        vs.iter()
            .map(|v| v.map_or(String::new(), |v| g.value(v).name().to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{}{} = {}({})",
        if anchor { "▶ " } else { "  " },
        names(node.outputs()),
        node.op(),
        names(node.inputs())
    )
}

fn verification(o: &Outcome) -> Markup {
    html! {
        h2 { "Verification" }
        @match (&o.done.verification, &o.done.lossy) {
            (None, None) => p { "Not verified in this run (optimize --verify checks it)." },
            (v, lossy) => {
                @if let Some(v) = v {
                    p { "Lossless phase checked in " (v.runs) " run(s); "
                        (v.rolled_back.len()) " rewrite(s) rolled back." }
                    table id="verify" {
                        thead { tr { th { "output" } th.num { "max abs" } th.num { "cosine" } th { "ok" } } }
                        tbody {
                            @for d in v.diffs.iter().flatten() {
                                tr { td { (d.name) } td.num { (format!("{:.3e}", d.max_abs)) }
                                     td.num { (format!("{:.6}", d.cosine)) } td { (if d.ok { "yes" } else { "no" }) } }
                            }
                        }
                    }
                }
                @if let Some(l) = lossy {
                    p { "Lossy steps: cosine " (format!("{:.5}", l.score.cosine)) " (95% low "
                        (format!("{:.5}", l.score.cosine_low)) "), top-1 "
                        (format!("{:.2}%", l.score.top1 * 100.0)) "; budget "
                        (if l.held { "met" } else { "missed" }) "." }
                }
            }
        }
    }
}
