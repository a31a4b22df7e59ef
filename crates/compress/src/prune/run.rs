//! The pruning step: groups → statistics → candidates → plan → rewrite → report.

use super::crossval::{self, Stats};
use super::group::{self, Group, LeftAlone};
use super::select::RIDGE;
use super::{
    Candidate, ConsumerFit, GroupReport, Options, PruneError, PruneReport, Site, candidate_sizes,
    grant, layers_of,
};
use super::{Kind, emit, heads, measure};
use crate::allocate::{self, Choices, Order, Probe};
use crate::budget::ErrorBudget;
use crate::decompose::factor::Moments;
use crate::decompose::layer::Layer;
use crate::decompose::layer::Shape;
use crate::decompose::{Data, stats::LayerStats};
use std::collections::HashSet;
use whittle_eval::Judge;
use whittle_ir::{Model, Tensor};
use whittle_passes::pass::PassCx;

/// Input sets the sensitivity of each candidate is measured on (the plans that must meet
/// the budget run on all of them).
const SENSITIVITY_SETS: usize = 8;

/// Largest consumer input (features) whose covariance is gathered and solved.
const MAX_FEATURES: usize = 4096;

/// Prunes `model` in place as `opts` says, judged on `data`; returns what it did.
pub fn prune(
    model: &mut Model,
    opts: &Options,
    data: &Data,
    cx: &mut PassCx,
) -> Result<PruneReport, PruneError> {
    if data.sets.is_empty() {
        return Err(PruneError::Data("no input data to run the model on".into()));
    }
    let mut layers = layers_of(model, cx);
    let (groups, alone) = find_groups(model, &layers, (opts, data), cx)?;
    let halves = crossval::split(data);
    let stats = if groups.is_empty() {
        Stats {
            fit: Vec::new(),
            check: None,
        }
    } else {
        crossval::gather_stats(&data.runtime, model, &mut layers, &halves)?
    };
    let sites: Vec<Site> = groups
        .into_iter()
        .map(|g| site(model, &layers, &stats, g, opts))
        .collect::<Result<_, _>>()?;
    // Judged on the held-out sets when there are any (the ridge was chosen on the halves
    // of the fit sets), else on the check half.
    let judged = match data.held.is_empty() {
        true => &halves.check,
        false => &data.held,
    };
    let judge = Judge::new(&data.runtime, model, judged)?;
    crate::budget::warn_unshowable(opts.budget, &judge);
    let (mut choices, mut why, evaluations) =
        plan(model, &layers, &sites, (&judge, judged), opts.budget)?;
    let latency = match opts.measure {
        true => measure::keep_faster(
            &data.runtime,
            model,
            (&layers, &stats.fit),
            &sites,
            &mut choices,
            &mut why,
        )?,
        false => vec![None; sites.len()],
    };
    let mut granted: Choices = vec![None; sites.len()];
    for (i, s) in sites.iter().enumerate() {
        let l = &layers[s.group.producer];
        if choices[i].is_some() && grant(cx, s.group.kind, &l.site) {
            granted[i] = choices[i];
        }
    }
    let pruned = apply(model, &layers, &sites, &granted)?;
    let score = if granted.iter().any(Option::is_some) {
        Some(judge.score(&pruned)?)
    } else {
        None
    };
    let report = PruneReport {
        budget: opts.budget,
        data: data_note(data, &halves),
        groups: reports(&layers, &sites, (&granted, &latency), &why, &alone),
        macs_before: total_macs(&layers, &sites, &vec![None; sites.len()]),
        macs_after: total_macs(&layers, &sites, &granted),
        score,
        evaluations,
    };
    *model = pruned;
    cx.journal.notes.extend(report.lines());
    Ok(report)
}

/// The groups of every kind `opts` wants (channel regions, then attentions and gated
/// FFNs, which replace what the channel search said about their projections), and the
/// layers left alone with the reason.
fn find_groups(
    model: &Model,
    layers: &[Layer],
    (opts, data): (&Options, &Data),
    cx: &PassCx,
) -> Result<(Vec<Group>, Vec<LeftAlone>), PruneError> {
    let (mut groups, mut alone) = group::find(&model.graph, layers, &opts.kinds, cx);
    if opts.kinds.contains(&Kind::Heads) || opts.kinds.contains(&Kind::Ffn) {
        let facts = heads::concrete_facts(model, data)?;
        let mut found = heads::find(model, layers, (&facts, &opts.kinds), cx);
        // Parts of a Concat on a transformer's last axis form one cone too: where the
        // channel search proved them a group, it has the last word.
        let channel: HashSet<&str> = groups
            .iter()
            .flat_map(|g| g.producers())
            .map(|p| layers[p].site.as_str())
            .collect();
        let ours = |p: usize| channel.contains(layers[p].site.as_str());
        found.groups.retain(|g| !g.producers().any(ours));
        found.alone.retain(|a| !channel.contains(a.site.as_str()));
        alone.retain(|a| !found.covered.contains(&a.site));
        groups.extend(found.groups);
        alone.extend(found.alone);
    }
    Ok((groups, alone))
}

/// Ranks the group's channels on the consumer's statistics and refits per size.
fn site(
    model: &Model,
    layers: &[Layer],
    stats: &Stats,
    group: Group,
    opts: &Options,
) -> Result<Site, PruneError> {
    let (macs, params) = group
        .producers()
        .chain(group.consumers().map(|(c, _)| c))
        .map(|i| &layers[i])
        .fold((0, 0), |(m, p), l| (m + l.macs(), p + l.params()));
    let mut s = Site {
        candidates: Vec::new(),
        macs,
        params,
        none: String::new(),
        ridge: None,
        group,
    };
    let mut others = match reader_fits(model, layers, &stats.fit, &s.group)? {
        Ok(fits) => fits,
        Err(why) => {
            s.none = why;
            return Ok(s);
        }
    };
    let mut fit = others.remove(0);
    if !others.is_empty() {
        fit.rank_with(&others);
    }
    let live = live_channels(&fit);
    let ch = s.group.channels as u64;
    let sizes: Vec<usize> = candidate_sizes(s.group.channels, s.group.unit, live)
        .into_iter()
        .filter(|k| macs as f64 >= opts.min_gain * (macs * *k as u64 / ch) as f64)
        .collect();
    s.ridge = sizes.get(sizes.len() / 2).and_then(|mid| {
        let (c, n) = (&layers[s.group.consumer], s.group.channels * s.group.span);
        let check = consumer_moments(c, &stats.check.as_ref()?[s.group.consumer], n)?;
        crossval::choose_ridge(&fit, check, &fit.keep(*mid))
    });
    let coef = s.ridge.unwrap_or(RIDGE);
    let mut tried = HashSet::new();
    for k in sizes {
        let kept = s.group.choose(&fit.ranked, k);
        if !tried.insert(kept.clone()) {
            continue;
        }
        let Some(refit) = fit.refit_scaled(&kept, coef) else {
            continue;
        };
        let more: Option<Vec<_>> = others.iter().map(|f| f.refit_scaled(&kept, coef)).collect();
        let Some(more) = more else { continue };
        let (macs, params) = cost_after(layers, &s.group, &kept);
        s.candidates.push(Candidate {
            refit,
            more,
            macs,
            params,
        });
    }
    if s.candidates.is_empty() {
        s.none = "no size pays (MACs would not fall by --min-gain)".into();
    }
    Ok(s)
}

/// The fit of every layer reading the group's channels (the consumer first) on
/// `stats`, or why one cannot be had.
fn reader_fits(
    model: &Model,
    layers: &[Layer],
    stats: &[LayerStats],
    g: &Group,
) -> Result<Result<Vec<ConsumerFit>, String>, PruneError> {
    let mut fits = Vec::new();
    for (i, span) in g.consumers() {
        let c = &layers[i];
        let Some(m) = consumer_moments(c, &stats[i], g.channels * span) else {
            return Ok(Err(format!(
                "consumer '{}' too wide (or not reached) for its statistics",
                c.site
            )));
        };
        let w = emit::consumer_matrix(&model.graph, c)?;
        fits.push(ConsumerFit::new(w, m, span));
    }
    Ok(Ok(fits))
}

/// MACs per sample and weight elements of the group's layers when it keeps `kept`: each
/// producer shrinks with the share of its channels kept, each reader with the whole
/// group's.
fn cost_after(layers: &[Layer], g: &Group, kept: &[usize]) -> (u64, u64) {
    let f = kept.len() as f64 / g.channels as f64;
    let readers = g.consumers().map(|(c, _)| (c, f));
    let (mut macs, mut params) = (0.0, 0.0);
    for (i, share) in g.shares(kept).into_iter().chain(readers) {
        macs += layers[i].macs() as f64 * share;
        params += layers[i].params() as f64 * share;
    }
    (macs.round() as u64, params.round() as u64)
}

/// The statistics of the features consumer `c` multiplies, when there are `n` of them
/// and not too many.
fn consumer_moments<'a>(c: &Layer, stats: &'a LayerStats, n: usize) -> Option<&'a Moments> {
    let m = match &c.shape {
        Shape::Conv(_) => stats.full.as_ref(),
        Shape::Dense(_) => stats.moments.first(),
    };
    m.filter(|m| m.sum.len() == n && n <= MAX_FEATURES && m.count > 0)
}

/// Channels whose contribution to the consumer's output varies at all.
fn live_channels(fit: &ConsumerFit) -> usize {
    let span = fit.span;
    let total = fit
        .sigma
        .diagonal()
        .iter()
        .map(|x| x.abs())
        .sum::<f64>()
        .max(1e-300);
    (0..fit.w.ncols() / span.max(1))
        .filter(|c| (c * span..(c + 1) * span).any(|i| fit.sigma[(i, i)].abs() > 1e-12 * total))
        .count()
}

/// What the report says of the data: where it came from and how it was split.
fn data_note(data: &Data, halves: &crossval::Halves) -> String {
    let (fit, check) = (halves.fit.len(), halves.check.len());
    match (data.held.is_empty(), halves.held_back) {
        (false, true) => format!(
            "{}; ridges chosen on halves of the fit sets ({fit} and {check})",
            data.source
        ),
        (true, true) => format!(
            "{}; refits fit on {fit} sets, the budget judged on the other {check}",
            data.source
        ),
        _ => data.source.clone(),
    }
}

/// The size per group the budget allows, why, and how many evaluations it took.
fn plan(
    model: &Model,
    layers: &[Layer],
    sites: &[Site],
    (judge, sets): (&Judge, &[Vec<Tensor>]),
    budget: ErrorBudget,
) -> Result<(Choices, Vec<String>, usize), PruneError> {
    let within = |tol: f64| -> Choices {
        sites
            .iter()
            .map(|s| {
                (0..s.candidates.len())
                    .filter(|j| s.candidates[*j].error() <= tol)
                    .min_by_key(|j| s.candidates[*j].macs)
            })
            .collect()
    };
    let (choices, feasible, evaluations) = match budget {
        ErrorBudget::Exact => (within(1e-6), Vec::new(), 0),
        ErrorBudget::Tol(t) => (within(t), Vec::new(), 0),
        ErrorBudget::Cosine(_) | ErrorBudget::Top1(_) => {
            // Sensitivities (many runs) on the first sets only; plans on all of them.
            let quick = match sets.len() > SENSITIVITY_SETS {
                true => Some(Judge::new(
                    judge.runtime(),
                    model,
                    &sets[..SENSITIVITY_SETS],
                )?),
                false => None,
            };
            let base: Vec<u64> = sites.iter().map(|s| s.macs).collect();
            let cands: Vec<Vec<u64>> = sites
                .iter()
                .map(|s| s.candidates.iter().map(|c| c.macs).collect())
                .collect();
            let mut score = |p: &[Option<usize>], probe| -> Result<_, PruneError> {
                let judge = match probe {
                    Probe::Sensitivity => quick.as_ref().unwrap_or(judge),
                    Probe::Plan => judge,
                };
                match judge.score(&apply(model, layers, sites, p)?) {
                    Ok(s) => Ok(Some(s)),
                    Err(e) => {
                        tracing::debug!("prune plan dropped: {e}");
                        Ok(None)
                    }
                }
            };
            let p = allocate::allocate(&base, &cands, Order::Monotone, budget, &mut score)?;
            (p.choices, p.feasible, p.evaluations)
        }
    };
    let why = sites
        .iter()
        .enumerate()
        .map(|(i, s)| match (&feasible.get(i), choices[i]) {
            (Some(f), c) => allocate::reason(
                c.is_some(),
                !s.candidates.is_empty(),
                f,
                budget,
                &s.none,
                "size",
            ),
            (None, Some(_)) => format!("smallest size within {budget}"),
            (None, None) if s.candidates.is_empty() => s.none.clone(),
            (None, None) => format!("every paying size errs more than {budget}"),
        })
        .collect();
    Ok((choices, why, evaluations))
}

/// `model` with plan `p` applied: every refit consumer first (they rewrite input
/// columns), then every producer (they keep output rows), so a layer that is both keeps
/// both edits.
pub(super) fn apply(
    model: &Model,
    layers: &[Layer],
    sites: &[Site],
    p: &[Option<usize>],
) -> Result<Model, PruneError> {
    let mut m = model.clone();
    for (s, j) in sites.iter().zip(p) {
        if let Some(j) = j {
            let c = &s.candidates[*j];
            let refits = std::iter::once(&c.refit).chain(&c.more);
            for ((i, span), r) in s.group.consumers().zip(refits) {
                emit::consumer(&mut m.graph, &layers[i], span, r)?;
            }
        }
    }
    for (s, j) in sites.iter().zip(p) {
        if let Some(j) = j {
            let c = &s.candidates[*j];
            emit::producer(&mut m.graph, layers, &s.group, &c.refit.kept)?;
        }
    }
    Ok(m)
}

/// MACs per sample of every layer with plan `p` applied: a layer shrinks with the share
/// of output channels its group keeps and with the share of input channels it reads.
fn total_macs(layers: &[Layer], sites: &[Site], p: &[Option<usize>]) -> u64 {
    let mut share = vec![1.0f64; layers.len()];
    for (s, j) in sites.iter().zip(p) {
        if let Some(j) = j {
            let kept = &s.candidates[*j].refit.kept;
            for (i, f) in s.group.shares(kept) {
                share[i] *= f;
            }
            for (i, _) in s.group.consumers() {
                share[i] *= kept.len() as f64 / s.group.channels as f64;
            }
        }
    }
    layers
        .iter()
        .zip(&share)
        .map(|(l, f)| (l.macs() as f64 * f).round() as u64)
        .sum()
}

/// The site a report line names: the producer, or the parts of a Concat as `a+b`.
fn site_of(layers: &[Layer], g: &Group) -> String {
    if g.parts.is_empty() {
        return layers[g.producer].site.clone();
    }
    let sites: Vec<&str> = g
        .parts
        .iter()
        .map(|p| layers[p.producer].site.as_str())
        .collect();
    sites.join("+")
}

fn reports(
    layers: &[Layer],
    sites: &[Site],
    (p, latency): (&[Option<usize>], &[measure::Latency]),
    why: &[String],
    alone: &[LeftAlone],
) -> Vec<GroupReport> {
    let mut out: Vec<GroupReport> = sites
        .iter()
        .zip(p)
        .zip(why)
        .zip(latency)
        .map(|(((s, j), why), latency)| {
            let c = j.map(|j| &s.candidates[j]);
            GroupReport {
                site: site_of(layers, &s.group),
                consumer: s
                    .group
                    .consumers()
                    .map(|(i, _)| layers[i].site.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                kind: Some(s.group.kind),
                kept: c.map_or(s.group.channels, |c| c.refit.kept.len()),
                total: s.group.channels,
                macs_before: s.macs,
                macs_after: c.map_or(s.macs, |c| c.macs),
                params_before: s.params,
                params_after: c.map_or(s.params, |c| c.params),
                error: c.map_or(0.0, Candidate::error),
                ridge: s.ridge,
                latency: *latency,
                why: why.clone(),
            }
        })
        .collect();
    out.extend(alone.iter().map(|a| GroupReport {
        site: a.site.clone(),
        consumer: String::new(),
        kind: None,
        kept: 0,
        total: 0,
        macs_before: 0,
        macs_after: 0,
        params_before: 0,
        params_after: 0,
        error: 0.0,
        ridge: None,
        latency: None,
        why: a.why.clone(),
    }));
    out
}
