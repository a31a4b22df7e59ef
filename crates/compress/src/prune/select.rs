//! Choosing channels on data and refitting the consumer (ThiNet-style, closed form).
//!
//! The consumer computes y = W·x over its input features x (n = channels·span; a Conv's
//! patches, a dense layer's inputs), whose covariance Σ and mean μ were measured on the
//! data. A channel's importance is the output variance it carries, tr(W_c Σ_cc W_cᵀ).
//! After keeping the feature set S, the least-squares consumer is
//!
//!   P = W Σ_{·S} Σ_SS⁻¹,   b' = b + W μ − P μ_S,
//!
//! which matches the original outputs as closely as any linear map of the kept features
//! can (the bias absorbs the mean of what was removed). The residual
//! tr(D Σ Dᵀ), D = W − P (P at the kept features), over tr(W Σ Wᵀ) is the predicted
//! output error. When the removed channels
//! are constant on the data (zero variance: dead filters), P = W_S and the bias shift is
//! exact.

use crate::decompose::factor::Moments;
use nalgebra::{DMatrix, DVector};

/// Ridge per feature-to-observation ratio (see [`ConsumerFit::shrinkage`]). On the trained
/// vgg_digits with 100 calibration images, 0.03 kept the held-back accuracy best among
/// 0, 0.03, 0.1, 0.3 and 1 (docs/prune.md); without it the dense layer behind the Flatten
/// (512 features, 100 rows) is fit to the calibration set exactly.
pub(super) const RIDGE: f64 = 0.03;

/// A feature whose variance is at most this share of the features' mean variance is a
/// constant (float rounding leaves ~1e-15 where exact arithmetic would give 0).
const CONSTANT: f64 = 1e-12;

/// The consumer's weight over its input features and the features' statistics.
#[derive(Clone, Debug)]
pub struct ConsumerFit {
    /// Cout × n.
    pub w: DMatrix<f64>,
    /// Centered covariance (n × n) and mean of the input features.
    pub sigma: DMatrix<f64>,
    pub mean: DVector<f64>,
    /// Features per channel.
    pub span: usize,
    /// Output variance each channel carries, tr(W_c Σ_cc W_cᵀ).
    pub importance: Vec<f64>,
    /// Channels, most important first.
    pub ranked: Vec<usize>,
    /// Observations the statistics were gathered from.
    pub rows: u64,
}

/// The refit consumer for one kept set.
#[derive(Clone, Debug)]
pub struct Refitted {
    /// Kept channels, ascending.
    pub kept: Vec<usize>,
    /// Cout × (kept·span), columns in kept order.
    pub p: DMatrix<f64>,
    /// Added to the consumer's bias.
    pub shift: DVector<f64>,
    /// Predicted relative output error of the consumer.
    pub error: f64,
}

/// Indices by descending score (ties: lower index first).
fn rank(score: &[f64]) -> Vec<usize> {
    let mut ranked: Vec<usize> = (0..score.len()).collect();
    ranked.sort_by(|a, b| score[*b].total_cmp(&score[*a]).then(a.cmp(b)));
    ranked
}

impl ConsumerFit {
    /// Statistics and ranking for weight `w` (Cout × channels·span).
    pub fn new(w: DMatrix<f64>, m: &Moments, span: usize) -> ConsumerFit {
        let sigma = m.second(true);
        let mean = m.mean();
        let channels = w.ncols() / span.max(1);
        let importance: Vec<f64> = (0..channels)
            .map(|c| {
                let wc = w.columns(c * span, span);
                let s = sigma.view((c * span, c * span), (span, span));
                (wc * s * wc.transpose()).trace()
            })
            .collect();
        ConsumerFit {
            w,
            sigma,
            mean,
            span,
            ranked: rank(&importance),
            importance,
            rows: m.count,
        }
    }

    /// Ranks the channels by their share of every reader's output variance (`others`
    /// read the same channels: fan-out), each reader weighing alike, and makes that this
    /// fit's ranking so [`ConsumerFit::keep`] chooses for all of them.
    pub fn rank_with(&mut self, others: &[ConsumerFit]) {
        let share = |f: &ConsumerFit, c: usize| {
            f.importance[c] / f.importance.iter().sum::<f64>().max(f64::MIN_POSITIVE)
        };
        let joint: Vec<f64> = (0..self.importance.len())
            .map(|c| share(self, c) + others.iter().map(|f| share(f, c)).sum::<f64>())
            .collect();
        self.ranked = rank(&joint);
    }

    /// The `k` most important channels, ascending.
    pub fn keep(&self, k: usize) -> Vec<usize> {
        let mut kept: Vec<usize> = self.ranked.iter().take(k).copied().collect();
        kept.sort_unstable();
        kept
    }

    fn features(&self, channels: &[usize]) -> Vec<usize> {
        channels
            .iter()
            .flat_map(|c| (c * self.span)..((c + 1) * self.span))
            .collect()
    }

    /// Ridge (relative to the mean feature variance) for a fit of `n` features: tiny when
    /// the data has many more observations than features, growing as they run short (a
    /// dense layer behind a Flatten sees one row per sample), so that the refit does not
    /// memorise the calibration set. `coef` is the ridge per feature-to-observation ratio.
    fn shrinkage(&self, n: usize, coef: f64) -> f64 {
        (coef * n as f64 / self.rows.max(1) as f64).max(1e-9)
    }

    /// The least-squares consumer over the `kept` channels.
    pub fn refit(&self, kept: &[usize]) -> Option<Refitted> {
        self.refit_scaled(kept, RIDGE)
    }

    /// [`ConsumerFit::refit`] with ridge coefficient `coef` in place of [`RIDGE`].
    pub fn refit_scaled(&self, kept: &[usize], coef: f64) -> Option<Refitted> {
        self.refit_with(kept, self.shrinkage(kept.len() * self.span, coef))
    }

    /// Relative output error of refit `r` on data with moments `m` (other data than the
    /// fit's): E‖W·x − P·x_S − shift‖² = tr(D Σ Dᵀ) + ‖D μ − shift‖², over E‖W·(x − μ)‖².
    pub fn error_on(&self, r: &Refitted, m: &Moments) -> f64 {
        let (sigma, mu) = (m.second(true), m.mean());
        let mut d = self.w.clone();
        for (j, i) in self.features(&r.kept).iter().enumerate() {
            d.column_mut(*i).axpy(-1.0, &r.p.column(j), 1.0);
        }
        let bias = &d * &mu - &r.shift;
        let err = (&d * &sigma * d.transpose()).trace() + bias.norm_squared();
        let total = (&self.w * &sigma * self.w.transpose()).trace();
        if total > 0.0 {
            (err.max(0.0) / total).sqrt()
        } else {
            err.max(0.0).sqrt()
        }
    }

    /// [`ConsumerFit::refit`] with ridge `shrink` (relative to the mean kept-feature
    /// variance; at least 1e-9).
    pub fn refit_with(&self, kept: &[usize], shrink: f64) -> Option<Refitted> {
        let n = self.w.ncols();
        let s = self.features(kept);
        let kept_set: std::collections::HashSet<usize> = s.iter().copied().collect();
        let r: Vec<usize> = (0..n).filter(|i| !kept_set.contains(i)).collect();
        let sigma_ss = self.sigma.select_rows(&s).select_columns(&s);
        let sigma_as = self.sigma.select_columns(&s); // n × |S|
        let w_s = self.w.select_columns(&s);
        let total = (&self.w * &self.sigma * self.w.transpose()).trace();
        // Removed channels that never vary (their variance is rounding noise next to the
        // features' mean variance): dropping them is exact to float precision.
        let scale = self.sigma.trace() / n.max(1) as f64;
        let constant = r
            .iter()
            .all(|i| self.sigma[(*i, *i)].abs() <= CONSTANT * scale.abs());
        let p = if constant {
            w_s
        } else {
            let ridge = (sigma_ss.trace() / s.len().max(1) as f64).max(1e-12) * shrink.max(1e-9);
            let chol = (sigma_ss + DMatrix::identity(s.len(), s.len()) * ridge).cholesky()?;
            chol.solve(&(&self.w * &sigma_as).transpose()).transpose()
        };
        let mu_s = DVector::from_iterator(s.len(), s.iter().map(|i| self.mean[*i]));
        let shift = &self.w * &self.mean - &p * mu_s;
        // Output error covariance D Σ Dᵀ with D = W − P (P placed at the kept features):
        // computed directly, not as a difference of traces (which cancels badly).
        let mut d = self.w.clone();
        for (j, i) in s.iter().enumerate() {
            d.column_mut(*i).axpy(-1.0, &p.column(j), 1.0);
        }
        let residual = (&d * &self.sigma * d.transpose()).trace();
        let error = if total > 0.0 {
            (residual.max(0.0) / total).sqrt()
        } else {
            0.0
        };
        Some(Refitted {
            kept: kept.to_vec(),
            p,
            shift,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed-form case: x2 = 2·x1 + 1 exactly, so dropping channel 2 and refitting
    /// must move its weight onto channel 1 (w1' = w1 + 2·w2) and its mean into the bias
    /// (shift = w2), with zero error.
    #[test]
    fn refit_moves_a_dependent_channels_weight_onto_the_kept_one() {
        let x = DMatrix::from_fn(50, 3, |r, c| {
            let a = (r as f64 * 0.37).sin();
            let b = (r as f64 * 1.3).cos();
            [a, 2.0 * a + 1.0, b][c]
        });
        let w = DMatrix::from_row_slice(2, 3, &[0.5, 1.5, -1.0, 2.0, -0.25, 0.75]);
        let fit = ConsumerFit::new(w.clone(), &Moments::of_rows(&x), 1);
        let r = fit.refit_with(&[0, 2], 0.0).expect("solvable");
        assert!(r.error < 1e-6, "error {}", r.error);
        for o in 0..2 {
            assert!((r.p[(o, 0)] - (w[(o, 0)] + 2.0 * w[(o, 1)])).abs() < 1e-6);
            assert!((r.p[(o, 1)] - w[(o, 2)]).abs() < 1e-6);
            assert!((r.shift[o] - w[(o, 1)]).abs() < 1e-6);
        }
    }

    /// A channel that is constant on the data is the least important and is dropped
    /// exactly: kept weights unchanged, its mean folded into the bias.
    #[test]
    fn a_constant_channel_ranks_last_and_drops_exactly() {
        let x = DMatrix::from_fn(40, 3, |r, c| match c {
            1 => 0.7,
            _ => ((r * (c + 1)) as f64 * 0.21).sin(),
        });
        let w = DMatrix::from_row_slice(1, 3, &[0.3, 5.0, -0.4]);
        let fit = ConsumerFit::new(w.clone(), &Moments::of_rows(&x), 1);
        assert_eq!(fit.ranked.last(), Some(&1));
        let r = fit.refit(&fit.keep(2)).expect("solvable");
        assert_eq!(r.kept, vec![0, 2]);
        assert_eq!(r.p[(0, 0)], 0.3);
        assert_eq!(r.p[(0, 1)], -0.4);
        assert!((r.shift[0] - 3.5).abs() < 1e-12);
        assert!(r.error < 1e-6, "error {}", r.error);
    }

    /// The ridge grows as observations run short against the features.
    #[test]
    fn shrinkage_grows_when_rows_run_short() {
        let x = |rows: usize| DMatrix::from_fn(rows, 4, |r, c| ((r * (c + 2)) as f64).sin());
        let w = DMatrix::from_element(1, 4, 1.0);
        let many = ConsumerFit::new(w.clone(), &Moments::of_rows(&x(4000)), 1);
        let few = ConsumerFit::new(w, &Moments::of_rows(&x(8)), 1);
        assert!(many.shrinkage(4, RIDGE) < 1e-4);
        assert!(few.shrinkage(4, RIDGE) > 100.0 * many.shrinkage(4, RIDGE));
    }

    /// With independent channels the refit keeps the weights and the error is the
    /// removed channel's share of the output variance.
    #[test]
    fn error_is_the_removed_share_of_output_variance() {
        let x = DMatrix::from_fn(400, 2, |r, c| {
            if c == 0 {
                (r as f64 * 0.5).sin()
            } else {
                (r as f64 * 0.5).cos()
            }
        });
        let w = DMatrix::from_row_slice(1, 2, &[1.0, 1.0]);
        let m = Moments::of_rows(&x);
        let fit = ConsumerFit::new(w, &m, 1);
        let r = fit.refit(&[0]).expect("solvable");
        let s = m.second(true);
        let want = (s[(1, 1)] / (s[(0, 0)] + s[(1, 1)] + 2.0 * s[(0, 1)])).sqrt();
        assert!((r.error - want).abs() < 0.05, "error {} vs {want}", r.error);
    }

    /// On the data it was fit on, the held-back error formula gives the refit's own error.
    #[test]
    fn error_on_the_fit_data_is_the_refit_error() {
        let x = DMatrix::from_fn(300, 4, |r, c| {
            ((r * (c + 1)) as f64 * 0.37).sin() + c as f64
        });
        let w = DMatrix::from_row_slice(2, 4, &[0.5, -1.0, 0.25, 2.0, 1.0, 0.5, -0.75, 0.1]);
        let m = Moments::of_rows(&x);
        let fit = ConsumerFit::new(w, &m, 1);
        let r = fit.refit_with(&[0, 3], 1e-9).expect("solvable");
        assert!(
            (fit.error_on(&r, &m) - r.error).abs() < 1e-6,
            "{} vs {}",
            fit.error_on(&r, &m),
            r.error
        );
    }
}
