//! The whole-model budget search that decomposition and pruning share: which candidate
//! rewrite each site takes so that MACs fall the most while the measured outputs still
//! meet `--budget cosine=X|top1=X`.
//!
//! Each candidate is first measured alone (its effect on the outputs, the site's
//! *sensitivity*); candidates that break the budget alone are dropped. Then one
//! multiplier λ trades MACs against error: every site takes the candidate minimising
//! `MACs/total + λ·error`. λ is bisected to the most aggressive plan whose combined
//! effect, measured, still meets the budget; a last sweep tries each site one step further.

use crate::budget::ErrorBudget;
use whittle_eval::Score;

/// A plan: per site, the index of the chosen candidate (None = left as it is).
pub type Choices = Vec<Option<usize>>;

/// Builds the model a plan describes and scores it against the original (`Ok(None)`:
/// the runtime cannot run it). The flag says the score is a sensitivity probe, which a
/// caller may measure on part of the data.
pub type Scorer<'a, E> = dyn FnMut(&[Option<usize>], Probe) -> Result<Option<Score>, E> + 'a;

/// What a score is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// One candidate alone (many of these: a subset of the data may do).
    Sensitivity,
    /// A whole plan that must meet the budget (all the data).
    Plan,
}

/// How the candidates of a site relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Any order: every candidate is measured.
    Any,
    /// Listed from least to most aggressive with error growing along the list: once one
    /// breaks the budget alone, the rest are not measured.
    Monotone,
}

/// What the search chose and what it measured on the way.
#[derive(Clone, Debug)]
pub struct Plan {
    pub choices: Choices,
    /// Per site, the candidates that keep the budget alone, with their relative output
    /// error (the reasons in the report come from these).
    pub feasible: Vec<Vec<(usize, f64)>>,
    /// Whole-model evaluations run.
    pub evaluations: usize,
}

/// Searches a plan for sites whose MACs as they are are `base[i]` and whose candidates
/// cost `candidates[i][j]` MACs. `score(plan)` builds the model with that plan and scores
/// it against the original; `Ok(None)` means the runtime cannot run it (the plan then
/// counts as breaking the budget).
pub fn allocate<E>(
    base: &[u64],
    candidates: &[Vec<u64>],
    order: Order,
    budget: ErrorBudget,
    score: &mut Scorer<'_, E>,
) -> Result<Plan, E> {
    let mut evaluations = 0;
    let total = (base.iter().sum::<u64>() as f64).max(1.0);
    let feasible = sensitivities(candidates, order, budget, score, &mut evaluations)?;
    let plan = |lambda: f64| -> Choices {
        feasible
            .iter()
            .zip(base)
            .enumerate()
            .map(|(i, (opts, b))| {
                opts.iter()
                    .map(|(j, e)| (Some(*j), candidates[i][*j] as f64 / total + lambda * e))
                    .fold((None, *b as f64 / total), |best, x| {
                        if x.1 < best.1 { x } else { best }
                    })
                    .0
            })
            .collect()
    };
    let macs = |p: &[Option<usize>]| -> u64 {
        p.iter()
            .enumerate()
            .map(|(i, c)| c.map_or(base[i], |j| candidates[i][j]))
            .sum()
    };
    let mut holds = |p: &[Option<usize>], evaluations: &mut usize| -> Result<bool, E> {
        *evaluations += 1;
        Ok(score(p, Probe::Plan)?.is_some_and(|s| budget.holds(&s)))
    };
    let mut best: Choices = vec![None; base.len()];
    let (mut lo, mut hi) = (-4.0f64, 8.0f64); // log10 λ: lo too aggressive, hi safe
    let first = plan(10f64.powf(lo));
    if holds(&first, &mut evaluations)? {
        best = first;
    } else {
        for _ in 0..14 {
            let mid = (lo + hi) / 2.0;
            let p = plan(10f64.powf(mid));
            if holds(&p, &mut evaluations)? {
                if macs(&p) < macs(&best) {
                    best = p;
                }
                hi = mid;
            } else {
                lo = mid;
            }
        }
    }
    // One sweep: each site one candidate cheaper, kept when the budget still holds.
    for i in 0..base.len() {
        let current = best[i].map_or(base[i], |j| candidates[i][j]);
        let next = feasible[i]
            .iter()
            .filter(|(j, _)| candidates[i][*j] < current)
            .max_by_key(|(j, _)| candidates[i][*j]);
        if let Some((j, _)) = next {
            let mut p = best.clone();
            p[i] = Some(*j);
            if holds(&p, &mut evaluations)? {
                best = p;
            }
        }
    }
    Ok(Plan {
        choices: best,
        feasible,
        evaluations,
    })
}

/// Each candidate of each site alone, scored on the whole model: those that keep the
/// budget, with their relative output error.
fn sensitivities<E>(
    candidates: &[Vec<u64>],
    order: Order,
    budget: ErrorBudget,
    score: &mut Scorer<'_, E>,
    evaluations: &mut usize,
) -> Result<Vec<Vec<(usize, f64)>>, E> {
    let mut out = Vec::with_capacity(candidates.len());
    for (i, cands) in candidates.iter().enumerate() {
        let mut kept = Vec::new();
        for j in 0..cands.len() {
            let mut p = vec![None; candidates.len()];
            p[i] = Some(j);
            let Some(s) = score(&p, Probe::Sensitivity)? else {
                continue;
            };
            *evaluations += 1;
            if budget.holds(&s) {
                kept.push((j, s.rel_err));
            } else if order == Order::Monotone {
                break;
            }
        }
        out.push(kept);
    }
    Ok(out)
}

/// Why a site got what it got, for the reports: `chosen`, no candidate at all
/// (`none_reason`), every candidate breaks the budget alone, or held back for the others.
pub fn reason(
    chosen: bool,
    has_candidates: bool,
    feasible: &[(usize, f64)],
    budget: ErrorBudget,
    none_reason: &str,
    unit: &str,
) -> String {
    match (chosen, has_candidates, feasible.is_empty()) {
        (true, _, _) => format!("chosen for budget {budget}"),
        (false, false, _) => none_reason.to_string(),
        (false, true, true) => format!("every paying {unit} alone breaks {budget}"),
        (false, true, false) => format!("kept to meet {budget} with the other layers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(cos: f64) -> Score {
        Score::exact(cos, 1.0, 1.0 - cos)
    }

    /// Two sites whose candidate j costs error `err[i][j]`, additive: the search must
    /// take the cheapest plan the budget allows and never one that breaks it.
    #[test]
    fn takes_the_cheapest_plan_that_holds() {
        let base = [100u64, 100];
        let cands = vec![vec![50u64, 20], vec![60u64, 10]];
        let err = [[0.001, 0.004], [0.002, 0.02]];
        let mut f = |p: &[Option<usize>], _: Probe| -> Result<Option<Score>, ()> {
            let e: f64 = p
                .iter()
                .enumerate()
                .map(|(i, c)| c.map_or(0.0, |j| err[i][j]))
                .sum();
            Ok(Some(score(1.0 - e)))
        };
        let plan = allocate(
            &base,
            &cands,
            Order::Any,
            ErrorBudget::Cosine(0.994),
            &mut f,
        )
        .unwrap();
        // Alone, site 1's second candidate (0.02) breaks the budget: not feasible.
        assert_eq!(plan.feasible[1].len(), 1);
        // Best plan within 0.006: site 0 at 20 (0.004) + site 1 at 60 (0.002) = 80.
        assert_eq!(plan.choices, vec![Some(1), Some(0)]);
    }

    /// Monotone candidates: after the first that breaks the budget alone, the more
    /// aggressive ones are not measured.
    #[test]
    fn monotone_candidates_stop_at_the_first_failure() {
        let mut probes = 0;
        let mut f = |p: &[Option<usize>], probe: Probe| -> Result<Option<Score>, ()> {
            if probe == Probe::Sensitivity {
                probes += 1;
            }
            Ok(Some(score(
                1.0 - 0.01 * p[0].map_or(0.0, |j| j as f64 + 1.0),
            )))
        };
        let cands = vec![vec![90u64, 80, 70, 60, 50]];
        let plan = allocate(
            &[100],
            &cands,
            Order::Monotone,
            ErrorBudget::Cosine(0.975),
            &mut f,
        );
        assert_eq!(plan.unwrap().choices, vec![Some(1)]);
        assert_eq!(
            probes, 3,
            "candidates 0, 1 hold; 2 breaks; 3 and 4 are skipped"
        );
    }

    #[test]
    fn a_plan_the_runtime_cannot_run_breaks_the_budget() {
        let mut f = |p: &[Option<usize>], _: Probe| -> Result<Option<Score>, ()> {
            Ok(if p[0] == Some(0) {
                None
            } else {
                Some(score(1.0))
            })
        };
        let plan = allocate(
            &[10],
            &[vec![5]],
            Order::Any,
            ErrorBudget::Cosine(0.9),
            &mut f,
        );
        let plan = plan.unwrap();
        assert_eq!(plan.choices, vec![None]);
        assert!(plan.feasible[0].is_empty());
    }
}
