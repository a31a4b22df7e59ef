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
                let what = match group.len() {
                    1 => "quantizing it costs".to_string(),
                    2 => format!(
                        "with the site after it, {last} (measured as one group): quantizing \
                         them costs"
                    ),
                    n => format!(
                        "with the {} sites after it, to {last} (measured as one group): \
                         quantizing them costs",
                        n - 1
                    ),
                };
                Some((
                    first.clone(),
                    format!(
                        "kept float for --budget {} {what} relative output error {:.2e}",
                        self.budget,
                        gain_of(first)
                    ),
                ))
            })
            .collect();
        out.push((
            "graph".into(),
            format!(
                "budget {} on {source}: all {} layers quantized gives cosine {:.7}, top-1 {:.2}%; \
                 {} kept float gives cosine {:.7}, top-1 {:.2}% ({} evaluations)",
                self.budget,
                self.sites.len(),
                self.all.cosine,
                self.all.top1 * 100.0,
                self.kept.len(),
                self.score.cosine,
                self.score.top1 * 100.0,
                self.evaluations
            ),
        ));
        out
    }
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
    // Cost of each unit: the error that goes away when it alone stays float.
    let mut units: Vec<(Vec<String>, f64)> = Vec::new();
    for group in groups(&sites, max_units) {
        let (_, s) = trial(&group)?;
        evaluations += 1;
        units.push((group, all.rel_err - s.rel_err));
    }
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
    let holds = crate::bisect::least_true(0, units.len(), |n| {
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
