//! Error budgets of the lossy steps (`--budget`): per layer (`tol`), whole model
//! (`cosine`, `top1`) or none (`exact`).

use whittle_eval::Score;

/// What a budgeted step (pruning, decomposition) takes and how far it goes: the kinds
/// of layer, the error it may cost, the least MAC gain worth a rewrite, and whether a
/// rewrite must also run faster when measured. Each step gives its defaults
/// (`impl Default for StepOptions<its Kind>`).
#[derive(Clone, Debug, PartialEq)]
pub struct StepOptions<K> {
    pub kinds: Vec<K>,
    pub budget: ErrorBudget,
    /// A layer (group) is rewritten only when its MACs fall by at least this factor.
    pub min_gain: f64,
    /// Keep a rewrite only if its layers also run faster in tract (measured).
    pub measure: bool,
}

/// How much error a lossy step may cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ErrorBudget {
    /// Per layer: relative error of the layer (weight error without data, output error on
    /// the data with it) at most this.
    Tol(f64),
    /// Whole model: mean cosine of the outputs vs the original, at least this.
    Cosine(f64),
    /// Whole model: argmax agreement with the original, at least this.
    Top1(f64),
    /// Full rank everywhere, substitution forced even where it costs more (testing).
    Exact,
}

impl std::str::FromStr for ErrorBudget {
    type Err = String;

    fn from_str(s: &str) -> Result<ErrorBudget, String> {
        if s == "exact" {
            return Ok(ErrorBudget::Exact);
        }
        let bad = || format!("budget '{s}': expected tol=X, cosine=X, top1=X or exact");
        let (kind, value) = s.split_once('=').ok_or_else(bad)?;
        let x: f64 = value.parse().map_err(|_| bad())?;
        if !["tol", "cosine", "top1"].contains(&kind) {
            return Err(bad());
        }
        if !(x.is_finite() && x >= 0.0) || (kind != "tol" && x > 1.0) {
            return Err(format!("budget '{s}': the value must be in [0, 1]"));
        }
        match kind {
            "tol" => Ok(ErrorBudget::Tol(x)),
            "cosine" => Ok(ErrorBudget::Cosine(x)),
            "top1" => Ok(ErrorBudget::Top1(x)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for ErrorBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorBudget::Tol(x) => write!(f, "tol={x}"),
            ErrorBudget::Cosine(x) => write!(f, "cosine={x}"),
            ErrorBudget::Top1(x) => write!(f, "top1={x}"),
            ErrorBudget::Exact => write!(f, "exact"),
        }
    }
}

impl ErrorBudget {
    /// The error a whole-model budget allows (cosine=0.99 → 0.01), None for per-layer and
    /// forced budgets.
    pub fn allowance(self) -> Option<f64> {
        match self {
            ErrorBudget::Cosine(x) | ErrorBudget::Top1(x) => Some(1.0 - x),
            ErrorBudget::Tol(_) | ErrorBudget::Exact => None,
        }
    }

    /// The same kind of budget allowing error `e` (0.005 → cosine=0.995); per-layer and
    /// forced budgets as they are. For a step that shares the budget with a later one.
    pub fn with_allowance(self, e: f64) -> ErrorBudget {
        // Rounded so a split budget prints as it reads (0.995, not 0.9949999999999999; a millionth is finer than any score resolves).
        let x = ((1.0 - e).clamp(0.0, 1.0) * 1e6).round() / 1e6;
        match self {
            ErrorBudget::Cosine(_) => ErrorBudget::Cosine(x),
            ErrorBudget::Top1(_) => ErrorBudget::Top1(x),
            other => other,
        }
    }

    /// The error `score` spends of this budget's measure (1 − cosine, or 1 − the stable
    /// top-1 share the budget counts); None for per-layer and forced budgets.
    pub fn spent(self, score: &Score) -> Option<f64> {
        match self {
            ErrorBudget::Cosine(_) => Some(1.0 - score.cosine),
            ErrorBudget::Top1(_) => Some(1.0 - score.stable),
            ErrorBudget::Tol(_) | ErrorBudget::Exact => None,
        }
    }

    /// True for budgets judged on the whole model's outputs (cosine, top-1): those need
    /// data held out to be judged on.
    pub fn is_whole_model(&self) -> bool {
        matches!(self, ErrorBudget::Cosine(_) | ErrorBudget::Top1(_))
    }

    /// True when `score` (the rewritten model against the original) meets the budget;
    /// per-layer and forced budgets are checked elsewhere and always hold here.
    ///
    /// Whole-model budgets hold when the 95 % lower confidence bound meets them (the
    /// bootstrap bound of the mean cosine; the exact binomial bound of the top-1 agreement
    /// with half the margin kept), so a plan that passes only by luck on the data does
    /// not. A top-1 budget the rows cannot show at all (see [`ErrorBudget::unshowable`])
    /// is held to the agreement itself.
    pub fn holds(&self, score: &Score) -> bool {
        match *self {
            ErrorBudget::Cosine(x) => score.cosine_low >= x,
            ErrorBudget::Top1(x) if self.unshowable(score.rows).is_some() => score.stable >= x,
            ErrorBudget::Top1(x) => score.stable_low >= x,
            ErrorBudget::Tol(_) | ErrorBudget::Exact => true,
        }
    }

    /// When `rows` judged rows cannot show this budget even if every row agrees: the
    /// message saying so and how many rows it takes (top-1 budgets only).
    pub fn unshowable(&self, rows: usize) -> Option<String> {
        let ErrorBudget::Top1(x) = *self else {
            return None;
        };
        let need = whittle_eval::bounds::rows_to_show(x)?;
        (rows > 0 && rows < need).then(|| {
            format!(
                "budget {self} cannot be shown on {rows} judged rows: even all of them agreeing \
                 bounds the agreement at {:.4} (95% confidence); it takes at least {need} rows \
                 (held-out samples of a classifier). The search holds the agreement itself to \
                 {x}; the report gives the bound",
                whittle_eval::bounds::agreement_lower(rows, rows)
            )
        })
    }
}

/// Says (once, as a warning) when the rows `judge` scores on cannot show `budget`.
pub fn warn_unshowable(budget: ErrorBudget, judge: &whittle_eval::Judge) {
    /// Messages already given: a process that runs many plans on the same data (`whittle
    /// tune`, a batch) says it once.
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if let Some(msg) = budget.unshowable(judge.rows()) {
        let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
        if !said.contains(&msg) {
            tracing::warn!("{msg}");
            said.push(msg);
        }
    }
}

/// The total line of a lossy step's report: budget, MACs per sample of `layers` before
/// and after, the data, and the score.
pub fn total_note(
    budget: ErrorBudget,
    layers: &str,
    (before, after): (u64, u64),
    data: &str,
    score: Option<&Score>,
) -> String {
    format!(
        "budget {budget}: {layers} MACs per sample {before} -> {after} ({:.2}x) on {data}{}",
        before as f64 / after.max(1) as f64,
        score_note(score)
    )
}

/// "; outputs vs original: cosine …, top-1 agreement …" for the lossy steps' totals, or
/// nothing without a score.
pub fn score_note(score: Option<&Score>) -> String {
    score
        .map(|s| {
            format!(
                "; outputs vs original: cosine {:.6} (>= {:.6} at 95% confidence over {} samples), \
                 top-1 agreement {:.4} ({:.4} with half the margin kept, >= {:.4} at 95% confidence \
                 over {} rows)",
                s.cosine, s.cosine_low, s.samples, s.top1, s.stable, s.stable_low, s.rows
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_round_trips_and_leaves_per_layer_budgets_alone() {
        let b = ErrorBudget::Cosine(0.99);
        let e = b.allowance().unwrap_or(0.0);
        assert!((e - 0.01).abs() < 1e-12);
        assert_eq!(b.with_allowance(e / 2.0), ErrorBudget::Cosine(0.995));
        assert_eq!(
            ErrorBudget::Top1(0.9).with_allowance(0.5),
            ErrorBudget::Top1(0.5)
        );
        assert_eq!(
            ErrorBudget::Tol(0.1).with_allowance(0.5),
            ErrorBudget::Tol(0.1)
        );
        assert_eq!(ErrorBudget::Exact.allowance(), None);
        let score = Score {
            stable: 0.98,
            ..Score::exact(0.996, 1.0, 0.0)
        };
        let spent = |b: ErrorBudget| b.spent(&score).unwrap_or(f64::NAN);
        assert!((spent(b) - 0.004).abs() < 1e-12);
        assert!((spent(ErrorBudget::Top1(0.9)) - 0.02).abs() < 1e-12);
    }
}
