//! Choosing each group's ridge on data its refit did not see.
//!
//! A refit of a wide consumer (a 1536-neuron FFN) from a few thousand rows fits the
//! calibration data better than it predicts new data, and a budget measured on the same
//! data cannot tell. With enough input sets they are split in two halves (even and odd
//! sets): the refits are fit on the first, each group with the ridge of [`LADDER`] whose
//! refit best predicts the second (scored from its moments alone: closed form, no model
//! run), and the budget is judged on the second. What the report says about the budget
//! is then measured on data the refits never saw.

use super::select::ConsumerFit;
use super::{PruneError, gather};
use crate::decompose::Data;
use crate::decompose::factor::Moments;
use crate::decompose::layer::Layer;
use crate::decompose::stats::LayerStats;
use whittle_ir::{Model, Tensor};

/// Fewer input sets than this: one fixed ridge ([`super::select::RIDGE`]).
pub(super) const MIN_SETS: usize = 8;

/// Ridge coefficients tried (ridge = coefficient × features / rows, relative to the mean
/// feature variance).
const LADDER: &[f64] = &[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0];

/// The statistics the refits are fit on and, with enough sets, those of the held-back
/// sets they are checked on.
pub(super) struct Stats {
    pub fit: Vec<LayerStats>,
    pub check: Option<Vec<LayerStats>>,
}

/// The input sets refits are fit on and those the budget is judged on.
pub(super) struct Halves {
    pub fit: Vec<Vec<Tensor>>,
    pub check: Vec<Vec<Tensor>>,
    /// The check sets are other sets than the fit ones.
    pub held_back: bool,
}

/// Even and odd sets with at least [`MIN_SETS`], else all of them for both.
pub(super) fn split(data: &Data) -> Halves {
    if data.sets.len() < MIN_SETS {
        return Halves {
            fit: data.sets.clone(),
            check: data.sets.clone(),
            held_back: false,
        };
    }
    let half = |r: usize| -> Vec<_> { data.sets.iter().skip(r).step_by(2).cloned().collect() };
    Halves {
        fit: half(0),
        check: half(1),
        held_back: true,
    }
}

/// Gathers [`Stats`] on `halves` (the model runs once over all the sets either way).
pub(super) fn gather_stats(
    runtime: &whittle_eval::Runtime,
    model: &Model,
    layers: &mut [Layer],
    halves: &Halves,
) -> Result<Stats, PruneError> {
    let fit = gather(runtime, model, layers, &halves.fit)?;
    let check = match halves.held_back {
        true => Some(gather(runtime, model, layers, &halves.check)?),
        false => None,
    };
    Ok(Stats { fit, check })
}

/// The ladder coefficient whose refit on `fit` (keeping `kept`) best predicts the
/// consumer's outputs on `check`, or None when no refit solves.
pub(super) fn choose_ridge(fit: &ConsumerFit, check: &Moments, kept: &[usize]) -> Option<f64> {
    LADDER
        .iter()
        .filter_map(|c| {
            let r = fit.refit_scaled(kept, *c)?;
            Some((*c, fit.error_on(&r, check)))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::select::RIDGE;
    use nalgebra::DMatrix;

    /// 40 features, 60 rows of noise around a 4-dimensional signal: the least-squares
    /// refit memorises the noise, so held-back rows prefer a large ridge; with plenty of
    /// rows a small one.
    #[test]
    fn few_rows_choose_a_larger_ridge() {
        // Uniform noise in [-0.5, 0.5) from a hash of (row, column).
        let noise = |r: usize, c: usize| {
            let mut h = (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (c as u64 + 1);
            h ^= h >> 33;
            h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            h ^= h >> 33;
            (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let data = |rows: usize, seed: usize| {
            DMatrix::from_fn(rows, 40, |r, c| {
                let r = r + seed * 100_000;
                let signal = (r as f64 * 0.7 * (c % 4 + 1) as f64).cos();
                signal + noise(r, c)
            })
        };
        let w = DMatrix::from_fn(3, 40, |o, i| ((o * 40 + i) as f64 * 0.61).sin());
        let kept: Vec<usize> = (0..30).collect();
        let few = ConsumerFit::new(w.clone(), &Moments::of_rows(&data(60, 0)), 1);
        let many = ConsumerFit::new(w, &Moments::of_rows(&data(20_000, 0)), 1);
        let check = Moments::of_rows(&data(5_000, 7));
        let c_few = choose_ridge(&few, &check, &kept).expect("solvable");
        let c_many = choose_ridge(&many, &check, &kept).expect("solvable");
        // The ridge itself is coefficient × features / rows.
        let (r_few, r_many) = (c_few * 30.0 / 60.0, c_many * 30.0 / 20_000.0);
        assert!(r_few > r_many, "few rows {r_few}, many rows {r_many}");
        // And it predicts the held-back rows at least as well as the fixed coefficient.
        let chosen = few.refit_scaled(&kept, c_few).expect("solvable");
        let fixed = few.refit_scaled(&kept, RIDGE).expect("solvable");
        assert!(few.error_on(&chosen, &check) <= few.error_on(&fixed, &check));
    }
}
