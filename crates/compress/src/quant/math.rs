//! The scale and zero-point arithmetic of quantization: symmetric int8 weights (per
//! tensor or per channel), asymmetric uint8 activations from a calibrated range, and
//! int32 biases on the product scale.

/// A quantized tensor: int8 values and one scale per channel (one in all for per-tensor).
#[derive(Clone, Debug, PartialEq)]
pub struct Int8 {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
    /// ‖w − ŵ‖ / ‖w‖ where ŵ is what DequantizeLinear gives back (0 for an all-zero w).
    pub relative_error: f64,
}

/// The largest weight magnitude that cannot saturate x86 u8×s8 kernels without VNNI
/// (`vpmaddubsw` adds two u8·s8 products in int16: 2 · 255 · 64 = 32 640 ≤ 32 767).
/// ONNX Runtime's MatMulInteger and QLinearConv on such CPUs (AVX2) give wrong sums for
/// weights beyond it; 7-bit weights are the portable choice for integer compute.
pub const REDUCED_RANGE: f32 = 64.0;

/// Quantizes `w` (row-major with `dims`) to [-127, 127] with scale max|w|/127 per slice
/// along `axis` (None: one scale). Rounds half to even, as DequantizeLinear's inverse
/// QuantizeLinear does. An all-zero slice gets scale 1.
pub fn symmetric_int8(w: &[f32], dims: &[usize], axis: Option<usize>) -> Int8 {
    symmetric(w, dims, axis, 127.0)
}

/// Like [`symmetric_int8`] with values in [−qmax, qmax] (qmax ≤ 127; see
/// [`REDUCED_RANGE`]).
pub fn symmetric(w: &[f32], dims: &[usize], axis: Option<usize>, qmax: f32) -> Int8 {
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
                m / qmax
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
            let q = (v / s).round_ties_even().clamp(-qmax, qmax);
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

/// Scale and zero point that map the range `[lo, hi]` (widened to hold 0, so that zero
/// padding and ReLU's zeros are exact) onto uint8 [0, 255]: scale = (hi − lo)/255,
/// zero point = round(−lo/scale). An empty or non-finite range gets scale 1, zero point
/// 0, so that the scale is never 0.
pub fn affine_uint8(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return (1.0, 0);
    }
    let scale = span / 255.0;
    let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
    (scale, zp as u8)
}

/// `x` through QuantizeLinear(scale, zp) to uint8 and back (what a Q/DQ pair computes).
pub fn fake_uint8(x: f32, scale: f32, zp: u8) -> f32 {
    let q = ((x / scale).round_ties_even() + f32::from(zp)).clamp(0.0, 255.0);
    (q - f32::from(zp)) * scale
}

/// A bias quantized to int32 on the scale of the product it is added to: per output
/// channel `c`, scale s_x · s_w[c] (one `s_w` for all when it has one entry), values
/// round(b / scale) saturated to the int32 range. A zero product scale gives scale 1
/// and the bias rounded as is.
pub fn bias_int32(b: &[f32], sx: f32, sw: &[f32]) -> (Vec<i32>, Vec<f32>) {
    let scales: Vec<f32> = (0..b.len())
        .map(|c| {
            let s = sx * sw.get(c).or(sw.first()).copied().unwrap_or(1.0);
            if s > 0.0 && s.is_finite() { s } else { 1.0 }
        })
        .collect();
    let values = b
        .iter()
        .zip(&scales)
        .map(|(v, s)| {
            (f64::from(*v) / f64::from(*s))
                .round_ties_even()
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect();
    (values, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_range_weights_stay_within_64() {
        let q = symmetric(&[1.0, -0.5, 0.25, 0.0], &[4], None, REDUCED_RANGE);
        assert_eq!(q.scales, vec![1.0 / 64.0]);
        assert_eq!(q.values, vec![64, -32, 16, 0]);
        // worst u8×s8 pair sum stays below i16::MAX
        assert!(2 * 255 * i32::from(q.values[0]) <= i32::from(i16::MAX));
    }

    #[test]
    fn uint8_ranges_hold_zero_and_span_255_steps() {
        // [-1, 3]: scale 4/255, zero point 1/(4/255) = 63.75 → 64
        let (s, z) = affine_uint8(-1.0, 3.0);
        assert_eq!(s, 4.0 / 255.0);
        assert_eq!(z, 64);
        // ReLU outputs: [0, 2.55] → scale 0.01, zero point 0; both ends exact
        let (s, z) = affine_uint8(0.0, 2.55);
        assert_eq!((s, z), (0.01, 0));
        assert_eq!(fake_uint8(0.0, s, z), 0.0);
        assert!((fake_uint8(2.55, s, z) - 2.55).abs() < 1e-6);
        // a positive-only range is widened to hold 0; negatives clip to 0
        let (s, z) = affine_uint8(1.0, 5.1);
        assert_eq!((s, z), (0.02, 0));
        assert_eq!(fake_uint8(-3.0, s, z), 0.0);
        // a negative-only range puts the zero point at the top
        assert_eq!(affine_uint8(-2.55, -1.0), (0.01, 255));
        // empty and broken ranges get a usable scale
        assert_eq!(affine_uint8(0.0, 0.0), (1.0, 0));
        assert_eq!(affine_uint8(f32::NEG_INFINITY, 1.0), (1.0, 0));
    }

    #[test]
    fn fake_quantization_rounds_half_to_even_and_saturates() {
        // scale 0.5, zp 10: 0.25/0.5 = 0.5 → 0; 0.75/0.5 = 1.5 → 2
        assert_eq!(fake_uint8(0.25, 0.5, 10), 0.0);
        assert_eq!(fake_uint8(0.75, 0.5, 10), 1.0);
        // 200 / 0.5 = 400 + 10 → 255 → (255 − 10) · 0.5
        assert_eq!(fake_uint8(200.0, 0.5, 10), 122.5);
        assert_eq!(fake_uint8(-200.0, 0.5, 10), -5.0);
    }

    #[test]
    fn biases_use_the_product_scale_per_channel() {
        // s_x = 0.5, s_w = [0.25, 0.125]: scales 0.125, 0.0625 (exact in binary)
        let (q, s) = bias_int32(&[1.0, -0.28125, 0.09375], 0.5, &[0.25, 0.125, 0.125]);
        assert_eq!(s, vec![0.125, 0.0625, 0.0625]);
        // 1/0.125 = 8; -0.28125/0.0625 = -4.5 → -4 and 0.09375/0.0625 = 1.5 → 2 (half to even)
        assert_eq!(q, vec![8, -4, 2]);
        // one weight scale for every channel, and saturation
        let (q, s) = bias_int32(&[3e9, -3e9], 1.0, &[1.0]);
        assert_eq!(s, vec![1.0, 1.0]);
        assert_eq!(q, vec![i32::MAX, i32::MIN]);
    }

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
