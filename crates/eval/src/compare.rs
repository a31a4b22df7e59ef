//! Comparing two models' outputs: error figures per output and a verdict.

use whittle_ir::{DataType, Tensor};

/// When two outputs count as the same.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Elementwise: |a − b| ≤ atol + rtol·|b|.
    pub rtol: f64,
    pub atol: f64,
    /// Whole-output cosine similarity at least this (when set).
    pub min_cosine: Option<f64>,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            rtol: 1e-4,
            atol: 1e-5,
            min_cosine: None,
        }
    }
}

/// How one output of the second model differs from the first's.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputDiff {
    pub name: String,
    pub shape_a: Vec<i64>,
    pub shape_b: Vec<i64>,
    pub max_abs: f64,
    pub max_rel: f64,
    pub cosine: f64,
    /// For classifier-shaped outputs (float, last dim ≥ 2): the share of rows whose
    /// argmax agrees.
    pub argmax_agreement: Option<f64>,
    /// Within the tolerance (and same shape and type).
    pub ok: bool,
}

/// The elements as f64 (floats, integers, bools).
fn values(t: &Tensor) -> Option<Vec<f64>> {
    match t.dtype() {
        DataType::Float | DataType::Double => t
            .to_f32_vec()
            .ok()
            .map(|v| v.into_iter().map(f64::from).collect()),
        DataType::Int64 | DataType::Int32 => t
            .to_i64_vec()
            .ok()
            .map(|v| v.into_iter().map(|x| x as f64).collect()),
        DataType::Bool | DataType::Uint8 | DataType::Int8 => {
            let signed = t.dtype() == DataType::Int8;
            t.le_bytes().ok().map(|b| {
                b.iter()
                    .map(|x| if signed { *x as i8 as f64 } else { *x as f64 })
                    .collect()
            })
        }
        _ => None,
    }
}

fn argmax_rows(v: &[f64], width: usize) -> Vec<usize> {
    v.chunks(width)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, x)| {
                    if *x > best.1 { (i, *x) } else { best }
                })
                .0
        })
        .collect()
}

/// Compares output `b` (candidate) against `a` (reference).
pub fn compare_output(name: &str, a: &Tensor, b: &Tensor, tol: &Tolerance) -> OutputDiff {
    let mut d = OutputDiff {
        name: name.to_string(),
        shape_a: a.dims.clone(),
        shape_b: b.dims.clone(),
        max_abs: f64::INFINITY,
        max_rel: f64::INFINITY,
        cosine: 0.0,
        argmax_agreement: None,
        ok: false,
    };
    let (Some(x), Some(y)) = (values(a), values(b)) else {
        d.ok = a == b;
        if d.ok {
            (d.max_abs, d.max_rel, d.cosine) = (0.0, 0.0, 1.0);
        }
        return d;
    };
    if a.dims != b.dims || x.len() != y.len() {
        return d;
    }
    let (mut max_abs, mut max_rel, mut dot, mut nx, mut ny, mut within) =
        (0f64, 0f64, 0f64, 0f64, 0f64, true);
    for (p, q) in x.iter().zip(&y) {
        if p.is_nan() && q.is_nan() {
            continue;
        }
        let diff = (p - q).abs();
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        max_abs = max_abs.max(diff);
        max_rel = max_rel.max(diff / p.abs().max(1e-30));
        within &= diff <= tol.atol + tol.rtol * p.abs();
        dot += p * q;
        nx += p * p;
        ny += q * q;
    }
    d.max_abs = max_abs;
    d.max_rel = if max_abs == 0.0 { 0.0 } else { max_rel };
    d.cosine = if nx == 0.0 && ny == 0.0 {
        1.0
    } else {
        (dot / (nx.sqrt() * ny.sqrt()).max(1e-300)).clamp(-1.0, 1.0)
    };
    let width = a.dims.last().copied().unwrap_or(0) as usize;
    if a.dims.len() >= 2 && width >= 2 && a.dtype().is_float() {
        let (ra, rb) = (argmax_rows(&x, width), argmax_rows(&y, width));
        let agree = ra.iter().zip(&rb).filter(|(p, q)| p == q).count();
        d.argmax_agreement = Some(agree as f64 / ra.len().max(1) as f64);
    }
    d.ok = within && a.dtype() == b.dtype() && tol.min_cosine.is_none_or(|c| d.cosine >= c);
    d
}
