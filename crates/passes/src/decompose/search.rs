//! Choosing a rank per layer: per-layer tolerance, forced full rank, or a whole-model
//! budget (cosine / top-1 agreement on the data) spent where it buys the most MACs.
//!
//! The budgeted search measures each candidate alone (its effect on the outputs, the
//! layer's *sensitivity*), then trades MACs against error with one multiplier λ: every
//! layer takes the candidate minimising `MACs/total + λ·error`. λ is bisected to the most
//! aggressive plan whose combined effect, measured, still meets the budget; a last sweep
//! tries each layer one step further.

use super::layer::Shape;
use super::{Choice, DecomposeError, ErrorBudget, Kind, Options, Site, conv, gemm, spatial};
use whittle_eval::Judge;
use whittle_ir::{Graph, Model};

/// The choice per layer (None = keep) and what was measured on the way.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub choices: Vec<Option<Choice>>,
    pub why: Vec<String>,
    pub latency: Vec<Option<(f64, f64)>>,
    pub evaluations: usize,
}

impl Outcome {
    fn new(choices: Vec<Option<Choice>>, why: Vec<String>, evaluations: usize) -> Outcome {
        let n = choices.len();
        Outcome {
            choices,
            why,
            latency: vec![None; n],
            evaluations,
        }
    }
}

/// Ranks worth trying for `kind` on `l`: those whose MACs fall by `min_gain` or more (all
/// of them up to 16, then a geometric ladder); `exact` asks for the full rank alone.
pub fn candidate_ranks(l: &super::layer::Layer, kind: Kind, opts: &Options) -> Vec<usize> {
    let full = l.full_rank(kind);
    if opts.budget == ErrorBudget::Exact {
        return vec![full];
    }
    let before = l.macs() as f64;
    let pays = |r: usize| before / l.cost(kind, r).0.max(1) as f64 >= opts.min_gain;
    let mut out = Vec::new();
    // A rank-1 dense bottleneck is valid ONNX, but tract 0.23 fails to load it
    // ("merge-same-role-axes" substitutes a scalar by a 1-vector), so dense ranks start at 2.
    let mut r = if kind == Kind::Gemm { 2 } else { 1 };
    while r <= full && pays(r) {
        out.push(r);
        r = if r < 16 { r + 1 } else { r + r / 4 };
    }
    out
}

/// `--budget exact`: every layer at full rank with the first requested kind.
pub fn exact(sites: &[Site]) -> Outcome {
    let choices: Vec<Option<Choice>> = sites.iter().map(|s| s.choices.first().copied()).collect();
    let why = choices
        .iter()
        .zip(sites)
        .map(|(c, s)| {
            if c.is_some() {
                "exact".into()
            } else {
                s.no_choice_reason()
            }
        })
        .collect();
    Outcome::new(choices, why, 0)
}

/// `--budget tol=X`: per layer, the cheapest candidate whose predicted error is ≤ X.
pub fn by_tolerance(sites: &[Site], tol: f64) -> Outcome {
    let mut why = Vec::new();
    let choices = sites
        .iter()
        .map(|s| {
            let best = s
                .choices
                .iter()
                .filter(|c| c.error <= tol)
                .min_by_key(|c| c.macs)
                .copied();
            why.push(match (&best, s.choices.is_empty()) {
                (Some(_), _) => format!("cheapest rank within tol={tol}"),
                (None, true) => s.no_choice_reason(),
                (None, false) => {
                    let least = s
                        .choices
                        .iter()
                        .map(|c| c.error)
                        .fold(f64::INFINITY, f64::min);
                    format!("every paying rank errs more than tol={tol} (least {least:.3})")
                }
            });
            best
        })
        .collect();
    Outcome::new(choices, why, 0)
}

/// Rewrites the layer of `site` as `c` says.
pub fn emit(g: &mut Graph, site: &Site, c: Choice) -> Result<(), DecomposeError> {
    let Some(p) = site.prepared(c.kind) else {
        return Ok(());
    };
    let l = &site.layer;
    match (&l.shape, c.kind) {
        (Shape::Conv(s), Kind::Conv) => conv::emit(g, l, s, p, c.rank)?,
        (Shape::Conv(s), Kind::Spatial) => spatial::emit(g, l, s, p, c.rank)?,
        (Shape::Dense(d), Kind::Gemm) => gemm::emit(g, l, d, p, c.rank)?,
        _ => {}
    }
    Ok(())
}

/// `model` with the given choices applied.
pub fn apply(
    model: &Model,
    sites: &[Site],
    choices: &[Option<Choice>],
) -> Result<Model, DecomposeError> {
    let mut m = model.clone();
    for (s, c) in sites.iter().zip(choices) {
        if let Some(c) = c {
            emit(&mut m.graph, s, *c)?;
        }
    }
    Ok(m)
}

/// `--budget cosine=X` / `top1=X`: sensitivity per candidate, then the λ trade-off.
pub fn allocate(
    model: &Model,
    sites: &[Site],
    judge: &Judge,
    budget: ErrorBudget,
) -> Result<Outcome, DecomposeError> {
    let mut evaluations = 0;
    let total: f64 = sites
        .iter()
        .map(|s| s.layer.macs() as f64)
        .sum::<f64>()
        .max(1.0);
    let options = sensitivities(model, sites, judge, budget, &mut evaluations)?;
    let plan = |lambda: f64| -> Vec<Option<Choice>> {
        sites
            .iter()
            .zip(&options)
            .map(|(s, opts)| {
                let keep = s.layer.macs() as f64 / total;
                opts.iter()
                    .map(|(c, e)| (Some(*c), c.macs as f64 / total + lambda * e))
                    .fold((None, keep), |best, x| if x.1 < best.1 { x } else { best })
                    .0
            })
            .collect()
    };
    let macs = |p: &[Option<Choice>]| -> u64 {
        sites
            .iter()
            .zip(p)
            .map(|(s, c)| c.map_or(s.layer.macs(), |c| c.macs))
            .sum()
    };
    let mut best: Vec<Option<Choice>> = vec![None; sites.len()];
    let (mut lo, mut hi) = (-4.0f64, 8.0f64); // log10 λ: lo too aggressive, hi safe
    let first = plan(10f64.powf(lo));
    if budget.holds(&judge.score(&apply(model, sites, &first)?)?) {
        best = first;
    } else {
        for _ in 0..14 {
            let mid = (lo + hi) / 2.0;
            let p = plan(10f64.powf(mid));
            evaluations += 1;
            if budget.holds(&judge.score(&apply(model, sites, &p)?)?) {
                if macs(&p) < macs(&best) {
                    best = p;
                }
                hi = mid;
            } else {
                lo = mid;
            }
        }
        evaluations += 1;
    }
    // One sweep: each layer one candidate cheaper, kept when the budget still holds.
    for i in 0..sites.len() {
        let current = best[i].map_or(sites[i].layer.macs(), |c| c.macs);
        let mut cheaper: Vec<&(Choice, f64)> = options[i]
            .iter()
            .filter(|(c, _)| c.macs < current)
            .collect();
        cheaper.sort_by_key(|(c, _)| std::cmp::Reverse(c.macs));
        if let Some((c, _)) = cheaper.first() {
            let mut p = best.clone();
            p[i] = Some(*c);
            evaluations += 1;
            if budget.holds(&judge.score(&apply(model, sites, &p)?)?) {
                best = p;
            }
        }
    }
    let why = reasons(sites, &best, &options, budget);
    Ok(Outcome::new(best, why, evaluations))
}

/// Sensitivity: each candidate of each site alone, scored on the whole model; the
/// candidates that keep the budget alone, with their relative output error.
fn sensitivities(
    model: &Model,
    sites: &[Site],
    judge: &Judge,
    budget: ErrorBudget,
    evaluations: &mut usize,
) -> Result<Vec<Vec<(Choice, f64)>>, DecomposeError> {
    let mut options = Vec::new();
    for (i, s) in sites.iter().enumerate() {
        let mut kept = Vec::new();
        for c in &s.choices {
            let mut choices = vec![None; sites.len()];
            choices[i] = Some(*c);
            let score = match judge.score(&apply(model, sites, &choices)?) {
                Ok(score) => score,
                // tract cannot run this rewrite (a tract limitation, not a bad model):
                // it is not a candidate.
                Err(e) => {
                    tracing::debug!("{}: rank {} dropped: {e}", s.layer.site, c.rank);
                    continue;
                }
            };
            *evaluations += 1;
            if budget.holds(&score) {
                kept.push((*c, score.rel_err));
            }
        }
        options.push(kept);
    }
    Ok(options)
}

/// Why each site got what it got, for the report.
fn reasons(
    sites: &[Site],
    best: &[Option<Choice>],
    options: &[Vec<(Choice, f64)>],
    budget: ErrorBudget,
) -> Vec<String> {
    sites
        .iter()
        .zip(best)
        .zip(options)
        .map(
            |((s, c), o)| match (c, s.choices.is_empty(), o.is_empty()) {
                (Some(_), _, _) => format!("chosen for budget {budget}"),
                (None, true, _) => s.no_choice_reason(),
                (None, false, true) => format!("every paying rank alone breaks {budget}"),
                (None, false, false) => format!("kept to meet {budget} with the other layers"),
            },
        )
        .collect()
}
