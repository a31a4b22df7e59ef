//! `--budget cosine=X|top1=X` for quantization: quantize every layer; if the outputs
//! drift past the budget, keep in float the layers whose quantization costs the most
//! until it holds.
//!
//! Each layer's cost is measured as the error that goes away when that layer alone stays
//! float (everything else quantized); layers are then kept float in that order, and the
//! least number that meets the budget is found by bisection on the measured model.

use super::QuantError;
use crate::budget::Budget;
use whittle_eval::{Judge, Score};
use whittle_ir::Model;

/// What the budget search decided and measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// The budget it was held to.
    pub budget: Budget,
    /// Every layer the quantization rewrites, with the relative output error that goes
    /// away when it alone stays float (0 when everything met the budget at once).
    pub sites: Vec<(String, f64)>,
    /// The layers kept float, most costly first.
    pub kept: Vec<String>,
    /// The model with every layer quantized, against the original.
    pub all: Score,
    /// The model as chosen, against the original.
    pub score: Score,
    /// Whole-model evaluations spent.
    pub evaluations: usize,
}

impl Fitted {
    /// Report lines: (site, text) per kept layer, then ("graph", summary).
    pub fn notes(&self, source: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .kept
            .iter()
            .map(|site| {
                let gain = self
                    .sites
                    .iter()
                    .find(|(s, _)| s == site)
                    .map_or(0.0, |(_, g)| *g);
                (
                    site.clone(),
                    format!(
                        "kept float for --budget {}: quantizing it costs relative output error {gain:.2e}",
                        self.budget
                    ),
                )
            })
            .collect();
        out.push((
            "graph".into(),
            format!(
                "budget {} on {source}: all {} layers quantized gives cosine {:.6}, top-1 {:.2}%; \
                 {} kept float gives cosine {:.6}, top-1 {:.2}% ({} evaluations)",
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
    budget: Budget,
    quantize: impl Fn(&mut Model, &[String]) -> Result<Vec<String>, QuantError>,
) -> Result<Fitted, QuantError> {
    if !matches!(budget, Budget::Cosine(_) | Budget::Top1(_)) {
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
        all,
        score: all,
        evaluations,
    };
    if budget.holds(&all) {
        return Ok(fitted);
    }
    // Cost of each layer: the error that goes away when it alone stays float.
    for (site, gain) in fitted.sites.iter_mut() {
        let (_, s) = trial(std::slice::from_ref(site))?;
        evaluations += 1;
        *gain = all.rel_err - s.rel_err;
    }
    let mut order: Vec<String> = fitted.sites.iter().map(|(s, _)| s.clone()).collect();
    let gain_of = |s: &String| {
        fitted
            .sites
            .iter()
            .find(|(x, _)| x == s)
            .map_or(0.0, |(_, g)| *g)
    };
    order.sort_by(|a, b| gain_of(b).total_cmp(&gain_of(a)));
    // Keeping all float meets any budget; bisect the fewest kept that still does.
    let (mut fails, mut holds) = (0usize, order.len());
    let mut best = None;
    while holds - fails > 1 {
        let mid = (fails + holds) / 2;
        let (_, s) = trial(&order[..mid])?;
        evaluations += 1;
        if budget.holds(&s) {
            holds = mid;
            best = Some(s);
        } else {
            fails = mid;
        }
    }
    let score = match best {
        Some(s) => s,
        None => {
            evaluations += 1;
            trial(&order[..holds])?.1
        }
    };
    fitted.kept = order[..holds].to_vec();
    fitted.score = score;
    fitted.evaluations = evaluations;
    Ok(fitted)
}
