//! Self-contained HTML reports (`--html`): one file, no network, no scripts or fonts,
//! charts as inline SVG, written with the `maud` templates in this module.

mod chart;
mod sections;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::path::Path;
use whittle::Settings;
use whittle::job::Outcome;
use whittle::tune::Tuned;
use whittle_ir::Model;

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.chosen td { background: #fdecea; font-weight: 600; } tr.missed td { color: #999; }
code, pre { font: 12px/1.4 ui-monospace, monospace; } pre { background: #f7f7f7; padding: 6px; overflow-x: auto; margin: 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; } h4 { margin: 6px 0 2px; font-size: 13px; }
rect.before { fill: #9aa; } rect.after { fill: #2a7ab0; } dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
dt { color: #666; } dd { margin: 0; } details { margin: 4px 0; } .legend span { margin-right: 14px; }
";

/// The page around `body`.
fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// `whittle tune --html`.
pub fn tune_page(model: &Path, t: &Tuned, base: &Settings) -> String {
    let original = whittle_onnx::read_model(model).ok();
    let body = html! {
        h1 { "whittle tune: " (model.display()) }
        dl {
            dt { "budget" } dd { (t.budget) " on " (t.data) }
            dt { "objective" } dd { (format!("{:?}", t.objective).to_lowercase()) }
            dt { "runtime" } dd { (t.runtime) }
            dt { "time" } dd { (format!("{:.1} s", t.seconds))
                @if let Some(s) = &t.stopped { " (stopped early: " (s) ")" } }
        }
        h2 { "Latency against held-out accuracy" }
        p.legend { span { "● blue: meets the budget" } span { "● orange: misses it" }
            span { "● grey: the original" } span { "outlined: on the Pareto front" }
            span { "red ring: chosen" } span { "marker area: size" } span { "numbers: the plans below" } }
        (chart::pareto(t))
        h2 { "Plans" }
        (plans_table(t))
        @if !t.skipped.is_empty() {
            ul { @for (p, why) in &t.skipped { li { "Not tried: " (p) ": " (why) } } }
        }
        @if let Some(toml) = t.toml(base) {
            h2 { "Reproduce with whittle optimize (whittle.toml)" }
            pre { (toml) }
        }
        @match (&t.outcome, &original) {
            (Some(o), Some(m)) => (sections::outcome(m, o)),
            _ => p { "No plan met the budget: nothing was written." },
        }
    };
    page(&format!("whittle tune {}", model.display()), body)
}

fn plans_table(t: &Tuned) -> Markup {
    let r = &t.measured[0];
    html! {
        table id="plans" {
            thead { tr { th.num { "#" } th { "plan" } th.num { "latency (ms)" } th.num { "speed" } th.num { "size" }
                th.num { "held-out cosine" } th.num { "95% low" } th.num { "top-1" } th { "budget" } th { "front" } } }
            tbody {
                @for (i, m) in t.measured.iter().enumerate() {
                    @let class = if Some(i) == t.chosen { "chosen" } else if m.held { "" } else { "missed" };
                    tr class=(class) {
                        td.num { (i) }
                        td { (m.plan) @if m.cached { " (cached)" } }
                        @if let Some(e) = &m.error {
                            td colspan="8" { "failed: " (e) }
                        } @else {
                            td.num { (format!("{:.3}", m.latency_ms)) }
                            td.num { (format!("{:.2}x", r.latency_ms / m.latency_ms.max(1e-9))) }
                            td.num { (crate::human::bytes(m.bytes)) }
                            td.num { (format!("{:.5}", m.cosine)) }
                            td.num { (format!("{:.5}", m.cosine_low)) }
                            td.num { (format!("{:.2}%", m.top1 * 100.0)) }
                            td { (if m.held { "met" } else { "missed" }) }
                            td { (if t.front.contains(&i) { "yes" } else { "" }) }
                        }
                    }
                }
            }
        }
    }
}

/// `whittle optimize --html`.
pub fn optimize_page(input: &Path, output: &Path, original: &Model, o: &Outcome) -> String {
    let body = html! {
        h1 { "whittle optimize: " (input.display()) " → " (output.display()) }
        (sections::outcome(original, o))
    };
    page(&format!("whittle optimize {}", input.display()), body)
}

/// `whittle certify --html`: the verdict of the whole, the counts, and every rewrite's
/// verdict (those not proved or checked first).
pub fn certify_page(original: &Path, optimized: &Path, r: &whittle_certify::Report) -> String {
    use whittle_certify::Verdict;
    let [proved, bound, checked, lossy, open] = r.counts();
    let order = |v: &Verdict| match v {
        Verdict::NotCertified { .. } => 0,
        Verdict::Lossy { .. } => 1,
        Verdict::CheckedByEvaluation { .. } => 2,
        Verdict::ProvedWithinBound { .. } => 3,
        Verdict::ProvedExact { .. } => 4,
    };
    let mut rows: Vec<&(usize, String, String, Verdict)> = r.verdicts.iter().collect();
    rows.sort_by_key(|(k, _, _, v)| (order(v), *k));
    let body = html! {
        h1 { "whittle certify: " (original.display()) " → " (optimized.display()) }
        @match &r.rejected {
            Some(x) => p { strong { "Rejected" }
                @if x.rewrite > 0 { " at rewrite " (x.rewrite) " (" (x.rule) " at " (x.site) ")" }
                ": " (x.why) },
            None => p { strong { "The certificate holds." }
                @if r.replayed { " The optimized model is exactly the original with the logged rewrites." } },
        }
        table {
            tr { th { "proved exact" } th { "proved within an fp32 bound" } th { "checked by evaluation" } th { "lossy" } th { "not certified" } }
            tr { td.num { (proved) } td.num { (bound) } td.num { (checked) } td.num { (lossy) } td.num { (open) } }
        }
        h2 { "Rewrites" }
        table {
            tr { th.num { "#" } th { "rule" } th { "site" } th { "verdict" } th { "why" } }
            @for (k, rule, site, v) in rows {
                tr {
                    td.num { (k) } td { (rule) } td { code { (site) } }
                    @match v {
                        Verdict::ProvedExact { lemma } => { td { "proved exact" } td { (lemma) } },
                        Verdict::ProvedWithinBound { lemma } => { td { "proved within an fp32 bound" } td { (lemma) } },
                        Verdict::CheckedByEvaluation { runtime, max_abs, .. } => {
                            td { "checked by evaluation" } td { (runtime) ", max abs " (format!("{max_abs:.1e}")) } },
                        Verdict::Lossy { measured } => { td { "lossy (outside proof)" } td { (measured) } },
                        Verdict::NotCertified { reason } => { td { strong { "not certified" } } td { (reason) } },
                    }
                }
            }
        }
    };
    page(&format!("whittle certify {}", original.display()), body)
}

/// `whittle dump --html`: the model's ops, inputs, outputs and costliest nodes.
pub fn dump_page(path: &Path, m: &Model) -> String {
    let s = whittle::Summary::of(m);
    let g = &m.graph;
    let mut costs = whittle_ir::cost::graph_costs(g);
    let macs =
        |c: &whittle_ir::cost::NodeCost| c.macs.as_ref().and_then(|p| p.as_const()).unwrap_or(-1);
    costs.sort_by_key(|c| std::cmp::Reverse(macs(c)));
    let body = html! {
        h1 { "whittle dump: " (path.display()) }
        p { (s.nodes) " nodes; " (s.initializers) " initializers, " (crate::human::bytes(s.initializer_bytes)) "." }
        h2 { "Inputs and outputs" }
        pre { (crate::cmd::dump_io(g)) }
        h2 { "Ops" }
        (sections::ops_table(&s))
        h2 { "Costliest nodes" }
        table id="cost" {
            thead { tr { th { "node" } th { "op" } th.num { "MACs" } th.num { "params" } } }
            tbody {
                @for c in costs.iter().take(50) {
                    tr { td { (g.node(c.node).label()) } td { (g.node(c.node).op()) }
                         td.num { (crate::human::opt_poly(c.macs.as_ref())) } td.num { (crate::human::count(c.params as f64)) } }
                }
            }
        }
    };
    page(&format!("whittle dump {}", path.display()), body)
}
