//! Symmetric int8 quantization of a float tensor, per tensor or per channel.

/// A quantized tensor: int8 values and one scale per channel (one in all for per-tensor).
#[derive(Clone, Debug, PartialEq)]
pub struct Int8 {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
    /// ‖w − ŵ‖ / ‖w‖ where ŵ is what DequantizeLinear gives back (0 for an all-zero w).
    pub relative_error: f64,
}

/// Quantizes `w` (row-major with `dims`) to [-127, 127] with scale max|w|/127 per slice
/// along `axis` (None: one scale). Rounds half to even, as DequantizeLinear's inverse
/// QuantizeLinear does. An all-zero slice gets scale 1.
pub fn symmetric_int8(w: &[f32], dims: &[usize], axis: Option<usize>) -> Int8 {
    let (channels, inner) = match axis {
        Some(a) => (dims[a], dims[a + 1..].iter().product::<usize>()),
        None => (1, w.len().max(1)),
    };
    let channel = |i: usize| {
        if axis.is_some() {
            (i / inner) % channels
        } else {
            0
        }
    };
    let mut max = vec![0f32; channels];
    for (i, v) in w.iter().enumerate() {
        let c = channel(i);
        max[c] = max[c].max(v.abs());
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|m| {
            if *m > 0.0 && m.is_finite() {
                m / 127.0
            } else {
                1.0
            }
        })
        .collect();
    let (mut err, mut norm) = (0f64, 0f64);
    let values = w
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = scales[channel(i)];
            let q = (v / s).round_ties_even().clamp(-127.0, 127.0);
            let back = f64::from(q * s);
            err += (f64::from(*v) - back).powi(2);
            norm += f64::from(*v).powi(2);
            q as i8
        })
        .collect();
    let relative_error = if norm > 0.0 { (err / norm).sqrt() } else { 0.0 };
    Int8 {
        values,
        scales,
        relative_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tensor_uses_the_largest_magnitude() {
        let q = symmetric_int8(&[0.5, -1.27, 0.01, 1.0], &[4], None);
        assert_eq!(q.scales, vec![0.01]);
        // 0.5/0.01 = 50, -1.27/0.01 = -127, 0.01/0.01 = 1, 1.0/0.01 = 100
        assert_eq!(q.values, vec![50, -127, 1, 100]);
        assert!(q.relative_error < 1e-6, "{}", q.relative_error);
    }

    #[test]
    fn per_channel_scales_each_slice_on_its_own() {
        // [2, 3] along axis 1: columns (1, 4), (-2, 0), (0.5, -0.25)
        let w = [1.0, -2.0, 0.5, 4.0, 0.0, -0.25];
        let q = symmetric_int8(&w, &[2, 3], Some(1));
        assert_eq!(q.scales, vec![4.0 / 127.0, 2.0 / 127.0, 0.5 / 127.0]);
        // 1 / (4/127) = 31.75 → 32; -2/(2/127) = -127; 0.5/(0.5/127) = 127;
        // 4 → 127; 0 → 0; -0.25/(0.5/127) = -63.5 → -64 (half to even)
        assert_eq!(q.values, vec![32, -127, 127, 127, 0, -64]);
        // along axis 0: rows (1, -2, 0.5) and (4, 0, -0.25)
        let r = symmetric_int8(&w, &[2, 3], Some(0));
        assert_eq!(r.scales, vec![2.0 / 127.0, 4.0 / 127.0]);
        assert_eq!(r.values[..3], [64, -127, 32]); // 63.5 → 64, 31.75 → 32
    }

    #[test]
    fn zero_slices_and_the_error_figure() {
        let q = symmetric_int8(&[0.0, 0.0, 3.0, 1.0], &[2, 2], Some(0));
        assert_eq!(q.scales, vec![1.0, 3.0 / 127.0]);
        assert_eq!(q.values, vec![0, 0, 127, 42]); // 1/(3/127) = 42.33 → 42
        let back = 42.0f64 * f64::from(3.0f32 / 127.0);
        let want = ((1.0 - back).powi(2) / 10.0).sqrt();
        assert!(
            (q.relative_error - want).abs() < 1e-6,
            "{} vs {want}",
            q.relative_error
        );
    }
}
