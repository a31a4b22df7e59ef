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

/// `--budget cosine=X` / `top1=X`: the shared whole-model search ([`crate::allocate`])
/// over each site's candidate ranks.
pub fn allocate(
    model: &Model,
    sites: &[Site],
    judge: &Judge,
    budget: ErrorBudget,
) -> Result<Outcome, DecomposeError> {
    let base: Vec<u64> = sites.iter().map(|s| s.layer.macs()).collect();
    let candidates: Vec<Vec<u64>> = sites
        .iter()
        .map(|s| s.choices.iter().map(|c| c.macs).collect())
        .collect();
    let to_choices = |p: &[Option<usize>]| -> Vec<Option<Choice>> {
        p.iter()
            .zip(sites)
            .map(|(j, s)| j.map(|j| s.choices[j]))
            .collect()
    };
    let mut score = |p: &[Option<usize>], _| -> Result<_, DecomposeError> {
        match judge.score(&apply(model, sites, &to_choices(p))?) {
            Ok(s) => Ok(Some(s)),
            // tract cannot run this rewrite (a tract limitation, not a bad model): it is
            // not a candidate.
            Err(e) => {
                tracing::debug!("decompose plan dropped: {e}");
                Ok(None)
            }
        }
    };
    let order = crate::allocate::Order::Any;
    let plan = crate::allocate::allocate(&base, &candidates, order, budget, &mut score)?;
    let why = sites
        .iter()
        .zip(&plan.choices)
        .zip(&plan.feasible)
        .map(|((s, c), f)| {
            let none = if s.choices.is_empty() {
                s.no_choice_reason()
            } else {
                String::new()
            };
            crate::allocate::reason(c.is_some(), !s.choices.is_empty(), f, budget, &none, "rank")
        })
        .collect();
    Ok(Outcome::new(
        to_choices(&plan.choices),
        why,
        plan.evaluations,
    ))
}
