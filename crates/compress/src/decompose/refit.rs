//! Pointwise refit for `--decompose conv` with calibration data.
//!
//! The per-channel SVD chooses the depthwise filters D; it fits each input channel's
//! block alone, so errors that other channels could cancel are left standing. With the
//! covariance Σ and mean μ of the conv's whole input patches (all channels, Cin·K values)
//! the pointwise weights can be solved jointly: with Y = W·x (the original outputs) and
//! Z = D·x (the depthwise outputs), per group
//!
//!   P = Cov(Y, Z)·Cov(Z)⁻¹ = (W Σ Dᵀ)(D Σ Dᵀ)⁻¹,   b' = b + W μ − P D μ,
//!
//! the least-squares pointwise conv for these filters (and the bias that removes the
//! mean shift). The residual tr(Cov(Y)) − tr(P·Cov(Z, Y)) is the layer's output error.

use super::layer::ConvShape;
use nalgebra::{DMatrix, DVector};

/// Largest patch length (Cin·K) whose covariance is gathered (2304 = 256 channels × 3×3,
/// a 42 MB matrix); wider layers keep the per-channel fit.
pub const MAX_PATCH: usize = 2304;

/// The whole-patch statistics of one conv and its weight as a matrix.
#[derive(Clone, Debug)]
pub struct Refit {
    /// Centered covariance of the patches (n × n, n = Cin·K).
    pub sigma: DMatrix<f64>,
    pub mean: DVector<f64>,
    /// W as Cout × n (zero outside each output's group).
    pub w: DMatrix<f64>,
}

/// A solved pointwise conv: weights per output (row) over the depthwise outputs of its
/// group, the bias shift, and the relative output error.
pub struct Solved {
    /// Cout × (Cin/g)·m, in the pointwise weight's layout.
    pub p: DMatrix<f64>,
    /// Added to the bias: W μ − P D μ.
    pub shift: DVector<f64>,
    pub error: f64,
}

impl Refit {
    /// The statistics for conv `c` with weight `w` (row-major [Cout, Cin/g, kh, kw]).
    pub fn new(c: &ConvShape, w: &[f32], sigma: DMatrix<f64>, mean: DVector<f64>) -> Refit {
        let (mg, taps, pg) = (c.mg(), c.taps(), c.cin / c.group);
        let wm = DMatrix::from_fn(c.cout, c.cin * taps, |o, col| {
            let (ch, k) = (col / taps, col % taps);
            if ch / pg != o / mg {
                return 0.0;
            }
            f64::from(w[(o * pg + ch % pg) * taps + k])
        });
        Refit { sigma, mean, w: wm }
    }

    /// Solves the pointwise conv for depthwise filters `d` (Cin·m × n, block-diagonal).
    pub fn solve(&self, c: &ConvShape, d: &DMatrix<f64>, m: usize) -> Option<Solved> {
        let (mg, pg) = (c.mg(), c.cin / c.group);
        let sd = &self.sigma * d.transpose(); // n × Cin·m
        let czz = d * &sd; // Cin·m × Cin·m
        let cyz = &self.w * &sd; // Cout × Cin·m
        let cyy_trace = (&self.w * &self.sigma * self.w.transpose()).trace();
        let mut p = DMatrix::zeros(c.cout, pg * m);
        let mut explained = 0.0;
        for gamma in 0..c.group {
            let (z0, zn) = (gamma * pg * m, pg * m);
            let (o0, on) = (gamma * mg, mg);
            let block = czz.view((z0, z0), (zn, zn)).clone_owned();
            let ridge = (block.trace() / zn.max(1) as f64).max(1e-12) * 1e-9;
            let chol = (block + DMatrix::identity(zn, zn) * ridge).cholesky()?;
            let rhs = cyz.view((o0, z0), (on, zn)).transpose();
            let pt = chol.solve(&rhs); // zn × on
            explained += (pt.transpose() * rhs).trace();
            p.view_mut((o0, 0), (on, zn)).copy_from(&pt.transpose());
        }
        let zmean = d * &self.mean;
        let mut shift = &self.w * &self.mean;
        for gamma in 0..c.group {
            let (z0, zn) = (gamma * pg * m, pg * m);
            let pz = p.view((gamma * mg, 0), (mg, zn)) * zmean.rows(z0, zn);
            for o in 0..mg {
                shift[gamma * mg + o] -= pz[o];
            }
        }
        let residual = (cyy_trace - explained).max(0.0);
        let error = if cyy_trace > 0.0 {
            (residual / cyy_trace).sqrt()
        } else {
            0.0
        };
        Some(Solved { p, shift, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(group: usize) -> ConvShape {
        ConvShape {
            cout: 4,
            cin: 2 * group,
            group,
            kernel: [1, 2],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [0; 4],
            auto_pad: "NOTSET".into(),
            input: [1, 2],
        }
    }

    #[test]
    fn full_depthwise_basis_recovers_the_weight_exactly() {
        for group in [1, 2] {
            let c = shape(group);
            let n = c.cin * c.taps();
            let w: Vec<f32> = (0..c.cout * 2 * 2)
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            let sigma = DMatrix::from_fn(n, n, |i, j| if i == j { 1.0 + i as f64 } else { 0.1 });
            let refit = Refit::new(&c, &w, sigma, DVector::from_element(n, 0.5));
            // m = K and D = identity per channel: P must be the weight itself.
            let d = DMatrix::identity(n, n);
            let s = refit.solve(&c, &d, c.taps()).expect("solvable");
            assert!(s.error < 1e-3, "error {}", s.error);
            assert!(s.shift.norm() < 1e-5);
            for o in 0..c.cout {
                for j in 0..2 * 2 {
                    let want = f64::from(w[o * 4 + j]);
                    assert!(
                        (s.p[(o, j)] - want).abs() < 1e-4,
                        "group {group} o {o} j {j}"
                    );
                }
            }
        }
    }
}
