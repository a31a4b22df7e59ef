//! Truncated SVD with an optional input weighting: the one piece of linear algebra every
//! decomposition shares.
//!
//! A layer computes `y = A·x` for a block `A` (rows × cols). Replacing `A` by a rank-m
//! `B` costs `E‖(A − B)·x‖²`. With the second moment (or covariance) of `x` written as
//! `S = L·Lᵀ`, that is `‖(A − B)·L‖²_F`, minimised by `B = [A·L]_m·L⁻¹` (Eckart–Young on
//! the weighted block). Without data `L = I` and it is the plain weight SVD.

use nalgebra::{DMatrix, DVector};

/// A block factored at full rank, truncated on demand: `A ≈ left[:, ..m] · right[..m, :]`.
#[derive(Clone, Debug)]
pub struct Factored {
    /// rows × q (left singular vectors scaled by the singular values).
    pub left: DMatrix<f64>,
    /// q × cols (right singular vectors, mapped back through `L⁻¹`).
    pub right: DMatrix<f64>,
    /// Singular values of the weighted block, largest first.
    pub sigma: Vec<f64>,
}

impl Factored {
    /// Factors `a`, weighting its columns by `weight` (the Cholesky factor `L` of the
    /// inputs' second moment; None = unweighted).
    pub fn new(a: &DMatrix<f64>, weight: Option<&Weighting>) -> Factored {
        let weighted = match weight {
            Some(w) => a * &w.l,
            None => a.clone(),
        };
        let svd = weighted.svd(true, true);
        let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
            // nalgebra computes both when asked; an empty block has nothing to keep.
            return Factored {
                left: DMatrix::zeros(a.nrows(), 0),
                right: DMatrix::zeros(0, a.ncols()),
                sigma: Vec::new(),
            };
        };
        let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
        order.sort_by(|x, y| svd.singular_values[*y].total_cmp(&svd.singular_values[*x]));
        let sigma: Vec<f64> = order.iter().map(|i| svd.singular_values[*i]).collect();
        let left = DMatrix::from_fn(a.nrows(), order.len(), |r, k| u[(r, order[k])] * sigma[k]);
        let mut right = DMatrix::from_fn(order.len(), a.ncols(), |k, c| vt[(order[k], c)]);
        if let Some(w) = weight {
            right *= &w.l_inv;
        }
        Factored { left, right, sigma }
    }

    /// Rank at full precision (number of singular values).
    pub fn full_rank(&self) -> usize {
        self.sigma.len()
    }

    /// Energy of the weighted block, Σσ².
    pub fn energy(&self) -> f64 {
        self.sigma.iter().map(|s| s * s).sum()
    }

    /// Energy dropped when keeping `m` terms, Σ_{r ≥ m} σ_r².
    pub fn dropped(&self, m: usize) -> f64 {
        self.sigma.iter().skip(m).map(|s| s * s).sum()
    }

    /// The rank-`m` approximation `left[:, ..m] · right[..m, :]`.
    pub fn approx(&self, m: usize) -> DMatrix<f64> {
        let m = m.min(self.full_rank());
        self.left.columns(0, m) * self.right.rows(0, m)
    }
}

/// Relative error of keeping `m` terms in every block: sqrt(Σ dropped / Σ energy).
pub fn relative_error(blocks: &[Factored], m: usize) -> f64 {
    let (d, e) = blocks
        .iter()
        .fold((0.0, 0.0), |(d, e), b| (d + b.dropped(m), e + b.energy()));
    if e > 0.0 { (d / e).sqrt() } else { 0.0 }
}

/// `L` and `L⁻¹` for a symmetric positive semi-definite second-moment matrix, made
/// definite by a small ridge (a dead input would otherwise make `L` singular).
#[derive(Clone, Debug)]
pub struct Weighting {
    pub l: DMatrix<f64>,
    pub l_inv: DMatrix<f64>,
}

impl Weighting {
    /// The weighting for second moment `s` (n × n); None when it cannot be factored.
    pub fn of(s: &DMatrix<f64>) -> Option<Weighting> {
        let n = s.nrows();
        let scale = (s.trace() / n.max(1) as f64).max(1e-12);
        let ridged = s + DMatrix::<f64>::identity(n, n) * (scale * 1e-3);
        let chol = ridged.cholesky()?;
        let l = chol.l();
        let l_inv = l.clone().try_inverse()?;
        Some(Weighting { l, l_inv })
    }
}

/// Running first and second moments of vectors of one length.
#[derive(Clone, Debug)]
pub struct Moments {
    pub count: u64,
    pub sum: DVector<f64>,
    pub outer: DMatrix<f64>,
}

impl Moments {
    /// Empty moments of `n`-vectors.
    pub fn new(n: usize) -> Moments {
        Moments {
            count: 0,
            sum: DVector::zeros(n),
            outer: DMatrix::zeros(n, n),
        }
    }

    /// The moments of the rows of `batch` (rows × n).
    pub fn of_rows(batch: &DMatrix<f64>) -> Moments {
        let mut m = Moments::new(batch.ncols());
        m.add_rows(batch);
        m
    }

    /// Adds the rows of `batch` (rows × n), each one observation.
    pub fn add_rows(&mut self, batch: &DMatrix<f64>) {
        self.count += batch.nrows() as u64;
        // Column by column: the storage order (this runs per layer, per sample).
        for (c, col) in batch.column_iter().enumerate() {
            self.sum[c] += col.sum();
        }
        // gemm (matrixmultiply) on an explicit transpose: gemm_tr is a plain loop.
        self.outer.gemm(1.0, &batch.transpose(), batch, 1.0);
    }

    /// The mean vector.
    pub fn mean(&self) -> DVector<f64> {
        &self.sum / self.count.max(1) as f64
    }

    /// E[x·xᵀ] − μ·μᵀ when `centered`, else E[x·xᵀ].
    pub fn second(&self, centered: bool) -> DMatrix<f64> {
        let n = self.count.max(1) as f64;
        let mut m = &self.outer / n;
        if centered {
            let mu = self.mean();
            m -= &mu * mu.transpose();
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> DMatrix<f64> {
        DMatrix::from_fn(4, 6, |r, c| {
            ((r * 7 + c * 3) % 5) as f64 - 2.0 + 0.1 * c as f64
        })
    }

    #[test]
    fn full_rank_reproduces_the_block() {
        let a = matrix();
        let f = Factored::new(&a, None);
        assert!((f.approx(f.full_rank()) - &a).norm() < 1e-10);
        assert_eq!(f.dropped(f.full_rank()), 0.0);
    }

    #[test]
    fn truncation_error_is_the_dropped_singular_values() {
        let a = matrix();
        let f = Factored::new(&a, None);
        for m in 0..=f.full_rank() {
            let measured = (f.approx(m) - &a).norm() / a.norm();
            let predicted = relative_error(std::slice::from_ref(&f), m);
            assert!(
                (measured - predicted).abs() < 1e-10,
                "m={m}: {measured} vs {predicted}"
            );
        }
    }

    #[test]
    fn weighting_minimises_the_weighted_error() {
        let a = matrix();
        // Inputs with very unequal scales: the weighted SVD must favour the loud ones.
        let s = DMatrix::from_diagonal(&DVector::from_vec(vec![100.0, 1.0, 0.01, 5.0, 1.0, 0.1]));
        let w = Weighting::of(&s).expect("positive definite");
        let weighted = Factored::new(&a, Some(&w));
        let plain = Factored::new(&a, None);
        let cost = |b: &DMatrix<f64>| ((&a - b) * &w.l).norm();
        assert!(cost(&weighted.approx(2)) < cost(&plain.approx(2)));
        assert!((weighted.approx(weighted.full_rank()) - &a).norm() < 1e-8);
    }

    #[test]
    fn moments_match_hand_computed_values() {
        let mut m = Moments::new(2);
        m.add_rows(&DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 3.0, 6.0]));
        assert_eq!(m.mean().as_slice(), &[2.0, 4.0]);
        // E[xxᵀ] = ([1,2;2,4] + [9,18;18,36]) / 2; minus μμᵀ = [4,8;8,16].
        assert_eq!(m.second(false).as_slice(), &[5.0, 10.0, 10.0, 20.0]);
        assert_eq!(m.second(true).as_slice(), &[1.0, 2.0, 2.0, 4.0]);
    }
}
