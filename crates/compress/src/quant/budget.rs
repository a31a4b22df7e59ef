//! `--budget cosine=X|top1=X` for quantization: quantize every layer; if the outputs
//! drift past the budget, keep in float the layers whose quantization costs the most
//! until it holds.
//!
//! Each layer's cost is measured as the error that goes away when that layer alone stays
//! float (everything else quantized); layers are then kept float in that order, and the
//! least number that meets the budget is found by bisection on the measured model.
//!
//! A mode that rewrites hundreds of sites (fp16 takes every node) would spend one model
//! evaluation per site on the costs; beyond [`MAX_UNITS`] sites they are measured, ranked
//! and kept in that many groups of consecutive sites (the order the pass rewrote them,
//! which is the graph's order) — coarser, so it may keep more float than needed, but still
//! held to the budget by measurement.

use super::QuantError;
use crate::budget::ErrorBudget;
use whittle_eval::{Judge, Score};
use whittle_ir::Model;

/// Sites measured one by one at most; beyond, they are measured in this many groups.
pub const MAX_UNITS: usize = 48;

/// What the budget search decided and measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// The budget it was held to.
    pub budget: ErrorBudget,
    /// Every site the quantization rewrites, with the relative output error that goes
    /// away when it (or its group) alone stays float (0 when everything met the budget at
    /// once).
    pub sites: Vec<(String, f64)>,
    /// The sites kept float, most costly first.
    pub kept: Vec<String>,
    /// The same sites as they were measured and kept: one per group (a single site unless
    /// there were more than [`MAX_UNITS`]).
    pub kept_groups: Vec<Vec<String>>,
    /// The model with every layer quantized, against the original.
    pub all: Score,
    /// The model as chosen, against the original.
    pub score: Score,
    /// Whole-model evaluations spent.
    pub evaluations: usize,
}

impl Fitted {
    /// Report lines: (site, text) per kept layer or group, then ("graph", summary).
    pub fn notes(&self, source: &str) -> Vec<(String, String)> {
        self.notes_as(source, &Wording::FLOAT)
    }

    /// [`Fitted::notes`] for a search whose kept sites are treated as `w` says.
    pub fn notes_as(&self, source: &str, w: &Wording) -> Vec<(String, String)> {
        let gain_of = |site: &String| {
            self.sites
                .iter()
                .find(|(s, _)| s == site)
                .map_or(0.0, |(_, g)| *g)
        };
        let mut out: Vec<(String, String)> = self
            .kept_groups
            .iter()
            .filter_map(|group| {
                let (first, last) = (group.first()?, group.last()?);
                let doing = w.doing;
                let what = match group.len() {
                    1 => format!("{doing} it costs"),
                    2 => format!(
                        "with the site after it, {last} (measured as one group): {doing} \
                         them costs"
                    ),
                    n => format!(
                        "with the {} sites after it, to {last} (measured as one group): \
                         {doing} them costs",
                        n - 1
                    ),
                };
                Some((
                    first.clone(),
                    format!(
                        "{} for --budget {} {what} {} {:.2e}",
                        w.kept,
                        self.budget,
                        w.cost,
                        gain_of(first)
                    ),
                ))
            })
            .collect();
        out.push((
            "graph".into(),
            format!(
                "budget {} on {source}: all {} layers {} gives cosine {:.7} (>= {:.7} at 95% \
                 confidence), top-1 {:.2}%; {} {} gives cosine {:.7} (>= {:.7}), top-1 {:.2}% \
                 (>= {:.2}% with half the margin kept, at 95% confidence over {} rows; {} \
                 evaluations)",
                self.budget,
                self.sites.len(),
                w.all,
                self.all.cosine,
                self.all.cosine_low,
                self.all.top1 * 100.0,
                self.kept.len(),
                w.kept,
                self.score.cosine,
                self.score.cosine_low,
                self.score.top1 * 100.0,
                self.score.stable_low * 100.0,
                self.score.rows,
                self.evaluations
            ),
        ));
        out
    }
}

/// How the report words a budget search: what the kept sites are, what the others are,
/// and what keeping a site avoids.
pub struct Wording {
    pub kept: &'static str,
    pub all: &'static str,
    pub doing: &'static str,
    /// What a site's cost is.
    pub cost: &'static str,
}

impl Wording {
    /// Kept sites stay float.
    pub const FLOAT: Wording = Wording {
        kept: "kept float",
        all: "quantized",
        doing: "quantizing",
        cost: "relative output error",
    };
}

/// Finds the fewest layers to keep float so that quantizing `model` meets `budget`
/// against `judge`'s reference. `quantize(model, excluded)` quantizes in place every
/// layer but the `excluded` sites and returns the sites it rewrote.
pub fn fit(
    model: &Model,
    judge: &Judge,
    budget: ErrorBudget,
    quantize: impl Fn(&mut Model, &[String]) -> Result<Vec<String>, QuantError>,
) -> Result<Fitted, QuantError> {
    fit_in_groups(model, judge, budget, MAX_UNITS, quantize)
}

/// [`fit`], measuring sites one by one up to `max_units` of them, else in `max_units`
/// groups of consecutive sites.
pub fn fit_in_groups(
    model: &Model,
    judge: &Judge,
    budget: ErrorBudget,
    max_units: usize,
    quantize: impl Fn(&mut Model, &[String]) -> Result<Vec<String>, QuantError>,
) -> Result<Fitted, QuantError> {
    fit_by(model, judge, budget, Costs::Measured(max_units), quantize)
}

/// [`fit`] with the sites' costs given, not measured: `costs` (site, estimated cost)
/// orders them, and only the whole-model trials of the bisection are run. For a mode
/// whose trials are slow (int8-dynamic in tract) and whose costs an estimate ranks well.
pub fn fit_ranked(
    model: &Model,
    judge: &Judge,
    budget: ErrorBudget,
    costs: Vec<(String, f64)>,
    quantize: impl Fn(&mut Model, &[String]) -> Result<Vec<String>, QuantError>,
) -> Result<Fitted, QuantError> {
    fit_by(model, judge, budget, Costs::Given(costs), quantize)
}

/// One trial of a search: the model with the given sites kept, its sites and score.
type Trial<'a> = dyn Fn(&[String]) -> Result<(Vec<String>, Score), QuantError> + 'a;

/// Where a search's per-site costs come from.
enum Costs {
    /// Measured: one trial per site, or per group beyond this many sites.
    Measured(usize),
    /// Given by the caller, per site (sites it does not name cost 0).
    Given(Vec<(String, f64)>),
}

fn fit_by(
    model: &Model,
    judge: &Judge,
    budget: ErrorBudget,
    costs: Costs,
    quantize: impl Fn(&mut Model, &[String]) -> Result<Vec<String>, QuantError>,
) -> Result<Fitted, QuantError> {
    if !matches!(budget, ErrorBudget::Cosine(_) | ErrorBudget::Top1(_)) {
        return Err(QuantError::Data(format!(
            "budget {budget}: quantization takes cosine=X or top1=X"
        )));
    }
    let trial = |excluded: &[String]| -> Result<(Vec<String>, Score), QuantError> {
        let mut m = model.clone();
        let sites = quantize(&mut m, excluded)?;
        Ok((sites, judge.score(&m)?))
    };
    let (sites, all) = trial(&[])?;
    let mut evaluations = 1;
    let mut fitted = Fitted {
        budget,
        sites: sites.iter().map(|s| (s.clone(), 0.0)).collect(),
        kept: Vec::new(),
        kept_groups: Vec::new(),
        all,
        score: all,
        evaluations,
    };
    if budget.holds(&all) {
        return Ok(fitted);
    }
    let mut units = unit_costs(costs, &sites, &all, &trial, &mut evaluations)?;
    for (site, gain) in fitted.sites.iter_mut() {
        if let Some((_, g)) = units.iter().find(|(u, _)| u.contains(site)) {
            *gain = *g;
        }
    }
    units.sort_by(|a, b| b.1.total_cmp(&a.1));
    let kept_of =
        |n: usize| -> Vec<String> { units[..n].iter().flat_map(|(u, _)| u.clone()).collect() };
    // Keeping all float meets any budget and keeping none does not: bisect the fewest
    // units kept that still does.
    let mut scores = std::collections::HashMap::new();
    let holds = whittle_passes::bisect::least_true(0, units.len(), |n| {
        let (_, s) = trial(&kept_of(n))?;
        evaluations += 1;
        scores.insert(n, s);
        Ok::<_, QuantError>(budget.holds(&s))
    })?;
    let score = match scores.get(&holds).copied() {
        Some(s) => s,
        None => {
            evaluations += 1;
            trial(&kept_of(holds))?.1
        }
    };
    fitted.kept = kept_of(holds);
    fitted.kept_groups = units[..holds].iter().map(|(u, _)| u.clone()).collect();
    fitted.score = score;
    fitted.evaluations = evaluations;
    Ok(fitted)
}

/// The units a search keeps or not, each with its cost: measured (the error that goes
/// away when the unit alone is kept, one trial each) or given.
fn unit_costs(
    costs: Costs,
    sites: &[String],
    all: &Score,
    trial: &Trial,
    evaluations: &mut usize,
) -> Result<Vec<(Vec<String>, f64)>, QuantError> {
    let mut units = Vec::new();
    match costs {
        Costs::Measured(max_units) => {
            for group in groups(sites, max_units) {
                let (_, s) = trial(&group)?;
                *evaluations += 1;
                units.push((group, all.rel_err - s.rel_err));
            }
        }
        Costs::Given(given) => {
            for site in sites {
                let c = given
                    .iter()
                    .find(|(s, _)| s == site)
                    .map_or(0.0, |(_, c)| *c);
                units.push((vec![site.clone()], c));
            }
        }
    }
    Ok(units)
}

/// `sites` as at most `max_units` groups of consecutive sites (one site each when there
/// are no more than that).
fn groups(sites: &[String], max_units: usize) -> Vec<Vec<String>> {
    let size = sites.len().div_ceil(max_units.max(1)).max(1);
    sites.chunks(size).map(<[String]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::groups;

    #[test]
    fn sites_are_grouped_only_beyond_the_limit() {
        let sites: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        assert_eq!(groups(&sites, 7).len(), 7);
        let g = groups(&sites, 3);
        assert_eq!(g, vec![vec!["0", "1", "2"], vec!["3", "4", "5"], vec!["6"]]);
        assert!(groups(&[], 3).is_empty());
    }
}
