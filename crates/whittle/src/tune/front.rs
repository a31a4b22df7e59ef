//! The Pareto front of tune's measurements (latency, size, held-out accuracy) and the
//! plan it chooses.

use super::{Measured, Objective};

/// The accuracy a measurement is ranked by: the held-out mean cosine's lower bound.
fn accuracy(m: &Measured) -> f64 {
    m.cosine_low
}

/// True when `a` is at least as good as `b` on latency, size and accuracy and better
/// on one.
fn dominates(a: &Measured, b: &Measured) -> bool {
    let (la, lb) = (a.latency_ms, b.latency_ms);
    let no_worse = la <= lb && a.bytes <= b.bytes && accuracy(a) >= accuracy(b);
    no_worse && (la < lb || a.bytes < b.bytes || accuracy(a) > accuracy(b))
}

/// The indices of the measurements (those that ran) no other one dominates.
pub fn front(all: &[Measured]) -> Vec<usize> {
    let ran: Vec<usize> = (0..all.len()).filter(|i| all[*i].error.is_none()).collect();
    ran.iter()
        .copied()
        .filter(|i| !ran.iter().any(|j| dominates(&all[*j], &all[*i])))
        .collect()
}

/// Latencies within this share of the fastest count as ties (timing noise).
const TIE: f64 = 0.03;

/// The plan to write: among those that meet the budget, the fastest (`Latency`) or the
/// smallest (`Size`). Latencies within [`TIE`] of each other are ties, broken by size
/// and then by the plan with fewer lossy steps (a step that changed nothing is not kept
/// for noise).
pub fn choose(all: &[Measured], objective: Objective) -> Option<usize> {
    let ok: Vec<usize> = (0..all.len())
        .filter(|i| all[*i].error.is_none() && all[*i].held && !all[*i].reference)
        .collect();
    let simpler = |a: &Measured, b: &Measured| steps(a).cmp(&steps(b));
    match objective {
        Objective::Latency => {
            let fastest = ok.iter().map(|i| all[*i].latency_ms).reduce(f64::min)?;
            ok.into_iter()
                .filter(|i| all[*i].latency_ms <= fastest * (1.0 + TIE))
                .min_by(|a, b| {
                    let (a, b) = (&all[*a], &all[*b]);
                    a.bytes
                        .cmp(&b.bytes)
                        .then(simpler(a, b))
                        .then(a.latency_ms.total_cmp(&b.latency_ms))
                })
        }
        Objective::Size => ok.into_iter().min_by(|a, b| {
            let (a, b) = (&all[*a], &all[*b]);
            a.bytes
                .cmp(&b.bytes)
                .then(a.latency_ms.total_cmp(&b.latency_ms))
                .then(simpler(a, b))
        }),
    }
}

/// How many lossy steps a plan runs.
fn steps(m: &Measured) -> usize {
    let s = &m.settings;
    [
        s.quantize.is_some(),
        s.prune.is_some(),
        s.decompose.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn row(plan: &str, ms: f64, bytes: u64, cos: f64, held: bool, quantize: bool) -> Measured {
        Measured {
            plan: plan.into(),
            settings: Settings {
                quantize: quantize.then(|| "int8-weights".to_string()),
                ..Settings::default()
            },
            reference: plan == "original",
            latency_ms: ms,
            bytes,
            nodes: 1,
            cosine: cos,
            cosine_low: cos,
            top1: 1.0,
            stable: 1.0,
            stable_low: 1.0,
            rel_err: 0.0,
            rows: 1,
            samples: 1,
            held,
            error: None,
            seconds: 0.0,
            notes: Vec::new(),
            cached: false,
        }
    }

    #[test]
    fn the_front_drops_dominated_plans_and_failures() {
        let mut all = vec![
            row("original", 10.0, 100, 1.0, true, false),
            row("slower and less accurate", 11.0, 100, 0.99, true, true),
            row("faster", 5.0, 50, 0.995, true, true),
            row("failed", 1.0, 1, 1.0, true, true),
        ];
        all[3].error = Some("budget".into());
        assert_eq!(front(&all), [0, 2]);
    }

    #[test]
    fn the_fastest_plan_that_holds_is_chosen_ties_going_to_the_smaller_and_simpler() {
        let all = vec![
            row("original", 10.0, 100, 1.0, true, false),
            row("fastest but misses", 1.0, 10, 0.9, false, true),
            row("fast", 5.0, 50, 0.995, true, true),
            row("as fast, lossless", 5.05, 50, 1.0, true, false),
            row("slow and small", 9.0, 20, 0.99, true, true),
        ];
        assert_eq!(choose(&all, Objective::Latency), Some(3));
        assert_eq!(choose(&all, Objective::Size), Some(4));
        assert_eq!(
            choose(&all[..2], Objective::Latency),
            None,
            "the original is never chosen"
        );
    }
}
