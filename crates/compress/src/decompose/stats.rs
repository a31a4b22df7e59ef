//! What the data says about each layer's input: its shape, and (for data-aware
//! factorization and bias correction) the moments of the vectors the layer multiplies —
//! per input channel the kh·kw patches a Conv sees, or the rows a MatMul/Gemm sees.

use super::DecomposeError;
use super::factor::Moments;
use super::layer::{Layer, Shape};
use super::refit;
use nalgebra::DMatrix;
use whittle_eval::probe;
use whittle_ir::{Model, Tensor, ValueId};

/// Input statistics of one layer.
#[derive(Clone, Debug)]
pub struct LayerStats {
    /// Dims of the layer's input in the first data set.
    pub dims: Vec<i64>,
    /// Conv: one per input channel (patch vectors). Dense: one (row vectors).
    pub moments: Vec<Moments>,
    /// Conv: the whole patches (all channels), when Cin·K ≤ [`refit::MAX_PATCH`].
    pub full: Option<Moments>,
}

/// Runs `model` on every set of `data` with the inputs of `layers` as extra outputs and
/// gathers their statistics (moments only when `moments` is true). Fills in each layer's
/// per-sample geometry from the dims seen.
pub fn gather(
    runtime: &whittle_eval::Runtime,
    model: &Model,
    layers: &mut [Layer],
    data: &[Vec<Tensor>],
    moments: bool,
) -> Result<Vec<LayerStats>, DecomposeError> {
    let xs: Vec<ValueId> = layers.iter().map(|l| l.x).collect();
    let mut stats: Vec<Option<LayerStats>> = vec![None; layers.len()];
    probe(
        runtime,
        model,
        &xs,
        data,
        "decompose (statistics)",
        |seen| {
            for ((l, s), t) in layers.iter().zip(stats.iter_mut()).zip(seen) {
                let s = s.get_or_insert_with(|| LayerStats {
                    dims: t.dims.clone(),
                    moments: Vec::new(),
                    full: None,
                });
                if moments {
                    accumulate(l, s, t)?;
                }
            }
            Ok::<(), DecomposeError>(())
        },
    )?;
    for (l, s) in layers.iter_mut().zip(&stats) {
        if let Some(s) = s {
            set_geometry(l, &s.dims);
        }
    }
    Ok(stats
        .into_iter()
        .map(|s| {
            s.unwrap_or(LayerStats {
                dims: Vec::new(),
                moments: Vec::new(),
                full: None,
            })
        })
        .collect())
}

/// Per-sample geometry from the input dims: a Conv's spatial size, a dense layer's rows.
fn set_geometry(l: &mut Layer, dims: &[i64]) {
    match &mut l.shape {
        Shape::Conv(c) if dims.len() == 4 => {
            c.input = [dims[2].max(0) as usize, dims[3].max(0) as usize];
            c.resolve_pads();
        }
        Shape::Dense(d) if dims.len() >= 2 => {
            // MACs per sample: the leading (batch) dim is the sample count.
            let lead: i64 = dims[1..dims.len() - 1].iter().product();
            d.rows = lead.max(1) as u64;
        }
        _ => {}
    }
}

fn accumulate(l: &Layer, s: &mut LayerStats, t: &Tensor) -> Result<(), DecomposeError> {
    let values = t
        .to_f32_vec()
        .map_err(|e| DecomposeError::Data(format!("layer '{}': {e}", l.site)))?;
    match &l.shape {
        Shape::Conv(c) => {
            let mut c = c.clone();
            if t.dims.len() != 4 {
                return Ok(());
            }
            let [n, ch, h, w] = [0, 1, 2, 3].map(|i| t.dims[i].max(0) as usize);
            c.input = [h, w];
            c.resolve_pads();
            let taps = c.taps();
            if s.moments.is_empty() {
                s.moments = vec![Moments::new(taps); ch];
                if ch * taps <= refit::MAX_PATCH {
                    s.full = Some(Moments::new(ch * taps));
                }
            }
            for b in 0..n {
                let planes: Vec<DMatrix<f64>> = (0..ch)
                    .map(|k| patches(&c, &values[(b * ch + k) * h * w..(b * ch + k + 1) * h * w]))
                    .collect();
                for (m, p) in s.moments.iter_mut().zip(&planes) {
                    m.add_rows(p);
                }
                if let Some(full) = s.full.as_mut() {
                    let rows = planes.first().map_or(0, |p| p.nrows());
                    let all = DMatrix::from_fn(rows, ch * taps, |r, col| {
                        planes[col / taps][(r, col % taps)]
                    });
                    full.add_rows(&all);
                }
            }
        }
        Shape::Dense(d) => {
            if values.len() % d.k != 0 {
                return Ok(());
            }
            let rows = values.len() / d.k;
            let m = DMatrix::from_fn(rows, d.k, |r, c| f64::from(values[r * d.k + c]));
            if s.moments.is_empty() {
                s.moments = vec![Moments::new(d.k)];
            }
            s.moments[0].add_rows(&m);
        }
    }
    Ok(())
}

/// The kh·kw patches one channel plane (h × w, row-major) presents to the conv, one row
/// per output position, zeros where the window reaches into the padding.
pub fn patches(c: &super::layer::ConvShape, plane: &[f32]) -> DMatrix<f64> {
    let (oh, ow) = (c.out(0), c.out(1));
    let [kh, kw] = c.kernel;
    let [h, w] = c.input;
    DMatrix::from_fn(oh * ow, kh * kw, |p, k| {
        let (y, x) = (p / ow, p % ow);
        let (i, j) = (k / kw, k % kw);
        let iy = (y * c.strides[0] + i * c.dilations[0]) as isize - c.pads[0] as isize;
        let ix = (x * c.strides[1] + j * c.dilations[1]) as isize - c.pads[1] as isize;
        if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
            0.0
        } else {
            f64::from(plane[iy as usize * w + ix as usize])
        }
    })
}
