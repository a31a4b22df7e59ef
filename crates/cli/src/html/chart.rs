//! The Pareto chart of a tune run as inline SVG: held-out accuracy (mean output
//! cosine) against latency, a marker per plan sized by its bytes, the front joined, the
//! budget drawn, the chosen plan ringed.

use maud::{Markup, html};
use whittle::tune::Tuned;

const W: f64 = 760.0;
const H: f64 = 430.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 56.0;

/// A linear scale from `lo..hi` onto `a..b`.
#[derive(Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        let t = if self.hi > self.lo {
            (v - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        self.a + t * (self.b - self.a)
    }

    /// Five evenly spaced ticks with labels of `digits` decimals.
    fn ticks(&self) -> Vec<f64> {
        (0..=4)
            .map(|i| self.lo + (self.hi - self.lo) * f64::from(i) / 4.0)
            .collect()
    }
}

/// The budget's cosine floor, when the budget is `cosine=X`.
fn cosine_floor(budget: &str) -> Option<f64> {
    budget.strip_prefix("cosine=")?.parse().ok()
}

/// The chart, or a note when fewer than one plan ran.
pub fn pareto(t: &Tuned) -> Markup {
    let ran: Vec<usize> = (0..t.measured.len())
        .filter(|i| t.measured[*i].error.is_none())
        .collect();
    if ran.is_empty() {
        return html! { p { "No plan ran: nothing to chart." } };
    }
    let m = &t.measured;
    let lat: Vec<f64> = ran.iter().map(|i| m[*i].latency_ms).collect();
    let mut cos: Vec<f64> = ran.iter().map(|i| m[*i].cosine).collect();
    cos.extend(cosine_floor(&t.budget));
    let (lmax, cmin) = (fold(&lat, f64::max), fold(&cos, f64::min));
    let x = Scale {
        lo: 0.0,
        hi: lmax * 1.08,
        a: LEFT,
        b: W - RIGHT,
    };
    let pad = ((1.0 - cmin) * 0.12).max(1e-5);
    let y = Scale {
        lo: cmin - pad,
        hi: 1.0 + pad,
        a: H - BOTTOM,
        b: TOP,
    };
    let ref_bytes = m[0].bytes.max(1) as f64;
    let radius = |i: usize| 4.0 + 10.0 * (m[i].bytes as f64 / ref_bytes).sqrt();
    let mut front = t.front.clone();
    front.sort_by(|a, b| m[*a].latency_ms.total_cmp(&m[*b].latency_ms));
    let path: Vec<String> = front
        .iter()
        .map(|i| format!("{:.1},{:.1}", x.at(m[*i].latency_ms), y.at(m[*i].cosine)))
        .collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" id="pareto" width=(W) height=(H)
            viewBox=(format!("0 0 {W} {H}")) role="img"
            aria-label="Held-out accuracy against latency, one marker per plan" {
            (axes(x, y))
            @if let Some(floor) = cosine_floor(&t.budget) {
                line class="budget" x1=(LEFT) x2=(W - RIGHT) y1=(y.at(floor)) y2=(y.at(floor))
                    stroke="#c0392b" stroke-dasharray="6 4" {}
                text x=(W - RIGHT - 4.0) y=(y.at(floor) - 6.0) text-anchor="end" fill="#c0392b"
                    font-size="12" { "budget cosine " (floor) }
            }
            polyline class="front" points=(path.join(" ")) fill="none" stroke="#555"
                stroke-width="1.5" {}
            @for i in &ran {
                @let (cx, cy) = (x.at(m[*i].latency_ms), y.at(m[*i].cosine));
                circle class="plan" cx=(format!("{cx:.1}")) cy=(format!("{cy:.1}"))
                    r=(format!("{:.1}", radius(*i)))
                    fill=(if m[*i].reference { "#999" } else if m[*i].held { "#2a7ab0" } else { "#e0a040" })
                    fill-opacity="0.7" stroke=(if t.front.contains(i) { "#222" } else { "none" }) {
                    title { (m[*i].plan) ": " (format!("{:.3}", m[*i].latency_ms)) " ms, "
                        (format!("{:.5}", m[*i].cosine)) ", " (crate::human::bytes(m[*i].bytes)) }
                }
                @if Some(*i) == t.chosen {
                    circle class="chosen" cx=(format!("{cx:.1}")) cy=(format!("{cy:.1}"))
                        r=(format!("{:.1}", radius(*i) + 5.0)) fill="none" stroke="#c0392b"
                        stroke-width="2.5" {}
                }
                text x=(format!("{:.1}", cx + radius(*i) + 2.0)) y=(format!("{:.1}", cy - radius(*i) + 2.0))
                    font-size="11" fill="#333" { (i) }
            }
        }
    }
}

fn fold(v: &[f64], f: fn(f64, f64) -> f64) -> f64 {
    v.iter().copied().reduce(f).unwrap_or(0.0)
}

/// The frame, ticks and axis titles.
fn axes(x: Scale, y: Scale) -> Markup {
    html! {
        rect x=(LEFT) y=(TOP) width=(W - LEFT - RIGHT) height=(H - TOP - BOTTOM)
            fill="#fafafa" stroke="#ccc" {}
        @for v in x.ticks() {
            line x1=(x.at(v)) x2=(x.at(v)) y1=(H - BOTTOM) y2=(H - BOTTOM + 5.0) stroke="#666" {}
            text x=(x.at(v)) y=(H - BOTTOM + 18.0) text-anchor="middle" font-size="11" { (format!("{v:.2}")) }
        }
        @for v in y.ticks() {
            line x1=(LEFT - 5.0) x2=(LEFT) y1=(y.at(v)) y2=(y.at(v)) stroke="#666" {}
            text x=(LEFT - 8.0) y=(y.at(v) + 4.0) text-anchor="end" font-size="11" { (format!("{v:.5}")) }
        }
        text x=((LEFT + W - RIGHT) / 2.0) y=(H - 14.0) text-anchor="middle" font-size="13" {
            "latency of one sample (ms)"
        }
        text x="16" y=((TOP + H - BOTTOM) / 2.0) text-anchor="middle" font-size="13"
            transform=(format!("rotate(-90 16 {})", (TOP + H - BOTTOM) / 2.0)) {
            "held-out mean cosine to the original"
        }
    }
}
