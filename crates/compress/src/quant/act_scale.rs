//! What `--act-scale auto` ranks layers by: how much more int8 error an activation gets
//! from one scale per tensor than from a scale per row, estimated on the float model's
//! activations (one probe run) instead of measured with a trial per layer: int8-dynamic
//! trials run in tract, which is an order of magnitude slower on integer matmuls than on
//! float ones.

/// Squared rounding errors of one activation, summed over the calibration sets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowNeed {
    /// Σ (x − q(x))² with one scale for the tensor (DynamicQuantizeLinear).
    pub per_tensor: f64,
    /// Σ (x − q(x))² with each row divided by its peak first.
    pub per_row: f64,
    /// Σ x².
    pub energy: f64,
}

impl RowNeed {
    /// Adds activation `x` of rows of `k` values.
    pub fn add(&mut self, x: &[f32], k: usize) {
        if k == 0 || x.is_empty() {
            return;
        }
        self.energy += x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>();
        self.per_tensor += dql_error(x, None);
        let peaks: Vec<f32> = x
            .chunks(k)
            .map(|r| {
                r.iter()
                    .fold(0f32, |m, v| m.max(v.abs()))
                    .max(f32::MIN_POSITIVE)
            })
            .collect();
        let scaled: Vec<f32> = x
            .chunks(k)
            .zip(&peaks)
            .flat_map(|(r, p)| r.iter().map(move |v| v / p))
            .collect();
        self.per_row += dql_error(&scaled, Some((&peaks, k)));
    }

    /// The relative error per-tensor scaling adds over per-row scaling.
    pub fn cost(&self) -> f64 {
        if self.energy > 0.0 {
            (self.per_tensor - self.per_row).max(0.0) / self.energy
        } else {
            0.0
        }
    }
}

/// Σ (x − DQL(x))² for uint8 DynamicQuantizeLinear over all of `x` (range widened to
/// hold 0), in the units of the original values: times each row's peak when `rows`
/// gives the peaks x was divided by.
fn dql_error(x: &[f32], rows: Option<(&[f32], usize)>) -> f64 {
    let lo = x.iter().fold(0f32, |m, v| m.min(*v));
    let hi = x.iter().fold(0f32, |m, v| m.max(*v));
    let scale = (hi - lo) / 255.0;
    if scale <= 0.0 {
        return 0.0;
    }
    let zp = (-lo / scale).round().clamp(0.0, 255.0);
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let q = ((v / scale).round() + zp).clamp(0.0, 255.0);
            let e = f64::from(v - (q - zp) * scale);
            let p = rows.map_or(1.0, |(peaks, k)| f64::from(peaks[i / k]));
            (e * p) * (e * p)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::RowNeed;

    #[test]
    fn an_outlier_row_needs_rows_and_even_rows_do_not() {
        let mut even = RowNeed::default();
        let x: Vec<f32> = (0..64).map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0).collect();
        even.add(&x, 16);
        let mut outlier = RowNeed::default();
        let mut y = x.clone();
        for v in &mut y[..16] {
            *v *= 300.0;
        }
        outlier.add(&y, 16);
        assert!(outlier.cost() > 10.0 * even.cost(), "{outlier:?} {even:?}");
        // Rows with equal peaks: per-row scaling changes nothing.
        let flat: Vec<f32> = (0..64)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let mut f = RowNeed::default();
        f.add(&flat, 16);
        assert!(f.cost() < 1e-9, "{f:?}");
        assert_eq!(RowNeed::default().cost(), 0.0);
    }
}
