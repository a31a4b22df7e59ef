//! One-sided 95 % lower confidence bounds for the figures lossy budgets are held to: a
//! top-1 agreement seen on n rows (exact binomial, Clopper-Pearson) and a mean output
//! cosine over samples (percentile bootstrap over samples, seeded: the same bound on every
//! run). A budget is met when the bound meets it, so a plan that holds on the data only by
//! luck does not pass.

use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use statrs::distribution::{Beta, ContinuousCDF};

/// The one-sided error rate of every bound: 5 % (95 % confidence).
pub const ALPHA: f64 = 0.05;

/// Bootstrap resamples per bound.
const RESAMPLES: usize = 1000;

/// The Clopper-Pearson lower bound of a proportion with `k` successes in `n` trials:
/// the `ALPHA` quantile of Beta(k, n − k + 1); 0 when k = 0 (or n = 0).
pub fn agreement_lower(k: usize, n: usize) -> f64 {
    if k == 0 || n == 0 {
        return 0.0;
    }
    if k == n {
        // Closed form of the same quantile: Beta(n, 1) has cdf x^n.
        return ALPHA.powf(1.0 / n as f64);
    }
    match Beta::new(k as f64, (n - k + 1) as f64) {
        Ok(b) => b.inverse_cdf(ALPHA),
        Err(_) => 0.0,
    }
}

/// The fewest rows on which a top-1 agreement of `x` can be shown at all (every row
/// agreeing bounds the agreement at ALPHA^(1/n), which must reach `x`); None for x ≥ 1.
pub fn rows_to_show(x: f64) -> Option<usize> {
    if x >= 1.0 {
        return None;
    }
    if x <= 0.0 {
        return Some(1);
    }
    Some((ALPHA.ln() / x.ln()).ceil() as usize)
}

/// The percentile-bootstrap lower bound of the mean of `values` (one per sample): the
/// `ALPHA` quantile of the means of [`RESAMPLES`] resamples drawn with replacement from a
/// fixed seed. The mean itself for fewer than two values.
pub fn mean_lower(values: &[f64]) -> f64 {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 || values.iter().all(|v| *v == values[0]) {
        return mean;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = ((RESAMPLES as f64) * ALPHA).floor() as usize;
    means[at.min(RESAMPLES - 1)].min(mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hundred_agreeing_rows_show_97_percent() {
        // The figure the budget issue quotes: 100/100 bounds agreement at 97.0 %.
        let b = agreement_lower(100, 100);
        assert!((b - 0.9705).abs() < 1e-3, "{b}");
        assert_eq!(rows_to_show(0.995), Some(598));
        assert!(agreement_lower(598, 598) >= 0.995);
        assert!(agreement_lower(597, 597) < 0.995);
    }

    #[test]
    fn the_exact_bound_matches_known_values() {
        // Clopper-Pearson one-sided 95 %: 95 of 100 -> 0.8971 (a standard table value).
        let b = agreement_lower(95, 100);
        assert!((b - 0.8971).abs() < 1e-3, "{b}");
        assert_eq!(agreement_lower(0, 10), 0.0);
        assert!(agreement_lower(5, 10) < 0.5);
    }

    #[test]
    fn the_bootstrap_bound_is_below_the_mean_and_repeatable() {
        let v: Vec<f64> = (0..200).map(|i| 0.99 + 0.0001 * (i % 7) as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let b = mean_lower(&v);
        assert!(b < mean && b > mean - 0.001, "{b} vs {mean}");
        assert_eq!(b, mean_lower(&v));
        assert_eq!(mean_lower(&[0.5; 10]), 0.5);
    }
}
