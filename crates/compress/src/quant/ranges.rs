//! Activation ranges from calibration data, for static quantization: the model runs in
//! tract on every calibration set with the values to quantize exposed, and each value's
//! range is taken by min/max, by percentile, or by entropy (the KL-divergence threshold).

use super::QuantError;
use std::fmt;
use std::str::FromStr;
use whittle_eval::probe;
use whittle_ir::{Model, Tensor, ValueId};

/// How a value's range is chosen from what calibration saw (`--calibration`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// The least and greatest value seen (the default; nothing clips).
    MinMax,
    /// Both tails clipped at this percentile (e.g. 99.99): outliers get clipped so the
    /// bulk gets finer steps.
    Percentile(f64),
    /// The clipping threshold on |x| whose quantized histogram diverges least (KL) from
    /// the observed one (TensorRT's calibration).
    Entropy,
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Method, String> {
        match s.split_once('=') {
            None if s == "minmax" => Ok(Method::MinMax),
            None if s == "entropy" => Ok(Method::Entropy),
            None if s == "percentile" => Ok(Method::Percentile(99.99)),
            Some(("percentile", p)) => match p.parse::<f64>() {
                Ok(p) if p > 50.0 && p <= 100.0 => Ok(Method::Percentile(p)),
                _ => Err(format!(
                    "calibration '{s}': the percentile must be in (50, 100]"
                )),
            },
            _ => Err(format!(
                "calibration '{s}': expected minmax, percentile[=P] or entropy"
            )),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::MinMax => write!(f, "minmax"),
            Method::Percentile(p) => write!(f, "percentile={p}"),
            Method::Entropy => write!(f, "entropy"),
        }
    }
}

/// The range a value is quantized over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub lo: f32,
    pub hi: f32,
}

/// Histogram resolution for percentile and entropy.
const BINS: usize = 2048;

/// What calibration saw of one value.
#[derive(Clone, Debug)]
struct Seen {
    lo: f32,
    hi: f32,
    /// Counts over [lo, hi] (percentile) or over [0, max |x|] (entropy).
    hist: Vec<u64>,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
            hist: Vec::new(),
        }
    }

    fn extend(&mut self, xs: &[f32]) {
        for x in xs.iter().filter(|x| x.is_finite()) {
            self.lo = self.lo.min(*x);
            self.hi = self.hi.max(*x);
        }
    }

    /// Where the histogram starts and how wide a bin is.
    fn axis(&self, method: Method) -> (f32, f32) {
        let (start, end) = match method {
            Method::Entropy => (0.0, self.lo.abs().max(self.hi.abs())),
            _ => (self.lo, self.hi),
        };
        (start, ((end - start) / BINS as f32).max(f32::MIN_POSITIVE))
    }

    fn count(&mut self, xs: &[f32], method: Method) {
        if self.hist.is_empty() {
            self.hist = vec![0; BINS];
        }
        let (start, width) = self.axis(method);
        // Entropy leaves exact zeros out: they are always representable, and ReLU's spike
        // at 0 would otherwise dominate the divergence and pull the threshold down.
        let skip_zero = method == Method::Entropy;
        for x in xs
            .iter()
            .filter(|x| x.is_finite() && !(skip_zero && **x == 0.0))
        {
            let x = if method == Method::Entropy {
                x.abs()
            } else {
                *x
            };
            let bin = (((x - start) / width) as usize).min(BINS - 1);
            self.hist[bin] += 1;
        }
    }

    fn range(&self, method: Method) -> Range {
        if self.lo > self.hi {
            // nothing finite was seen
            return Range { lo: 0.0, hi: 0.0 };
        }
        let (start, width) = self.axis(method);
        let edge = |bin: usize| start + width * bin as f32;
        let (lo, hi) = match method {
            Method::MinMax => (self.lo, self.hi),
            Method::Percentile(p) => {
                let (a, b) = percentile_bins(&self.hist, p);
                (edge(a), edge(b + 1))
            }
            Method::Entropy => {
                let levels = if self.lo < 0.0 { 128 } else { 256 };
                let t = edge(entropy_bins(&self.hist, levels));
                (-t, t)
            }
        };
        Range {
            lo: lo.max(self.lo),
            hi: hi.min(self.hi),
        }
    }
}

/// The first and last bins of the middle of the distribution: the bins below the
/// (100 − p)-th percentile and above the p-th are cut.
fn percentile_bins(hist: &[u64], p: f64) -> (usize, usize) {
    let total: u64 = hist.iter().sum();
    let low_cut = total as f64 * (100.0 - p) / 100.0;
    let high_cut = total as f64 * p / 100.0;
    let mut acc = 0u64;
    let (mut first, mut last) = (None, hist.len().saturating_sub(1));
    for (i, c) in hist.iter().enumerate() {
        acc += c;
        if first.is_none() && acc as f64 > low_cut {
            first = Some(i);
        }
        if acc as f64 >= high_cut {
            last = i;
            break;
        }
    }
    (first.unwrap_or(0).min(last), last)
}

/// The number of |x| bins to keep (the threshold is that bin's upper edge) whose
/// distribution, squeezed into `levels` quantization steps, diverges least from the seen
/// one; outliers beyond the threshold are counted in its last bin.
fn entropy_bins(hist: &[u64], levels: usize) -> usize {
    let n = hist.len();
    if n <= levels || hist.iter().all(|c| *c == 0) {
        return n;
    }
    let (mut best, mut best_kl) = (n, f64::INFINITY);
    for i in levels..=n {
        let mut p: Vec<f64> = hist[..i].iter().map(|c| *c as f64).collect();
        p[i - 1] += hist[i..].iter().sum::<u64>() as f64;
        let q = squeeze(&hist[..i], levels);
        let kl = divergence(&p, &q);
        if kl < best_kl {
            (best, best_kl) = (i, kl);
        }
    }
    best
}

/// `h` merged into `levels` groups of adjacent bins, each group's count spread evenly
/// over its non-empty bins (empty bins stay empty).
fn squeeze(h: &[u64], levels: usize) -> Vec<f64> {
    let mut q = vec![0.0; h.len()];
    let per = h.len() as f64 / levels as f64;
    for j in 0..levels {
        let a = (j as f64 * per) as usize;
        let b = if j + 1 == levels {
            h.len()
        } else {
            ((j + 1) as f64 * per) as usize
        };
        let group = &h[a..b];
        let sum: u64 = group.iter().sum();
        let nonzero = group.iter().filter(|c| **c > 0).count();
        if nonzero == 0 {
            continue;
        }
        for (k, c) in group.iter().enumerate() {
            if *c > 0 {
                q[a + k] = sum as f64 / nonzero as f64;
            }
        }
    }
    q
}

/// KL(p ‖ q) of two unnormalised histograms; bins where p has mass but q has none count
/// as a large fixed penalty (the squeeze cannot represent them).
fn divergence(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp == 0.0 || sq == 0.0 {
        return f64::INFINITY;
    }
    p.iter()
        .zip(q)
        .filter(|(a, _)| **a > 0.0)
        .map(|(a, b)| {
            let (a, b) = (a / sp, b / sq);
            if b > 0.0 { a * (a / b).ln() } else { a * 20.0 }
        })
        .sum()
}

/// Runs `model` over `sets` and returns the range of each of `values` by `method`.
/// Min/max takes one pass over the data; percentile and entropy a second (the histogram
/// spans what the first saw).
pub fn observe(
    runtime: &whittle_eval::Runtime,
    model: &Model,
    values: &[ValueId],
    sets: &[Vec<Tensor>],
    method: Method,
) -> Result<Vec<Range>, QuantError> {
    let mut seen = vec![Seen::new(); values.len()];
    let label = "quantize (calibration)";
    probe(runtime, model, values, sets, label, |ts| {
        for (s, t) in seen.iter_mut().zip(ts) {
            s.extend(&floats(model, values, t)?);
        }
        Ok::<(), QuantError>(())
    })?;
    if method != Method::MinMax {
        probe(runtime, model, values, sets, label, |ts| {
            for (s, t) in seen.iter_mut().zip(ts) {
                s.count(&floats(model, values, t)?, method);
            }
            Ok::<(), QuantError>(())
        })?;
    }
    Ok(seen.iter().map(|s| s.range(method)).collect())
}

fn floats(model: &Model, values: &[ValueId], t: &Tensor) -> Result<Vec<f32>, QuantError> {
    t.to_f32_vec().map_err(|e| {
        let names: Vec<&str> = values
            .iter()
            .map(|v| model.graph.value(*v).name())
            .collect();
        QuantError::Data(format!("calibration values {names:?}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(xs: &[f32], method: Method) -> Range {
        let mut s = Seen::new();
        s.extend(xs);
        if method != Method::MinMax {
            s.count(xs, method);
        }
        s.range(method)
    }

    #[test]
    fn minmax_is_the_extremes_and_skips_non_finite() {
        let r = seen(&[0.5, -2.0, f32::NAN, 3.0, f32::INFINITY], Method::MinMax);
        assert_eq!(r, Range { lo: -2.0, hi: 3.0 });
    }

    #[test]
    fn percentile_clips_rare_outliers_and_keeps_the_bulk() {
        // 10 000 values evenly over [0, 1), and one outlier at 100.
        let mut xs: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        xs.push(100.0);
        let r = seen(&xs, Method::Percentile(99.9));
        assert_eq!(r.lo, 0.0);
        // 99.9 % of 10 001 values lie below 1; bins are 100/2048 wide, so the cut is at
        // the upper edge of the bin holding 1.0: 21 · 100/2048 ≈ 1.025.
        assert!(r.hi > 0.99 && r.hi < 1.1, "{r:?}");
        assert_eq!(seen(&xs, Method::Percentile(100.0)).hi, 100.0);
    }

    #[test]
    fn entropy_clips_a_long_tail_but_not_a_compact_distribution() {
        // A compact uniform distribution keeps (nearly) its whole range.
        let xs: Vec<f32> = (0..20_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        let r = seen(&xs, Method::Entropy);
        assert!(r.hi > 0.95, "{r:?}");
        // Laplace-like bulk with a few far outliers: the threshold falls well short of
        // the largest value.
        let mut ys: Vec<f32> = (1..20_000)
            .map(|i| -((i as f32) / 20_000.0).ln() * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        ys.extend([60.0, -60.0]);
        let r = seen(&ys, Method::Entropy);
        assert!(r.hi < 30.0 && r.hi > 3.0, "{r:?}");
        assert_eq!(r.lo, -r.hi);
    }

    #[test]
    fn methods_parse_and_print() {
        assert_eq!("minmax".parse(), Ok(Method::MinMax));
        assert_eq!("entropy".parse(), Ok(Method::Entropy));
        assert_eq!("percentile".parse(), Ok(Method::Percentile(99.99)));
        assert_eq!("percentile=99.9".parse(), Ok(Method::Percentile(99.9)));
        assert!("percentile=20".parse::<Method>().is_err());
        assert!("kl".parse::<Method>().is_err());
        assert_eq!(Method::Percentile(99.9).to_string(), "percentile=99.9");
    }

    #[test]
    fn squeezing_keeps_mass_and_empty_bins() {
        let q = squeeze(&[4, 0, 2, 2], 2);
        assert_eq!(q, vec![4.0, 0.0, 2.0, 2.0]);
        let q = squeeze(&[3, 1, 0, 0], 1);
        assert_eq!(q, vec![2.0, 2.0, 0.0, 0.0]);
        assert_eq!(divergence(&[1.0, 1.0], &[1.0, 1.0]), 0.0);
    }
}
