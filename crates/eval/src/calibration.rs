//! Calibration data: the input sets lossy passes run the model on, read from a file or
//! folder and cut into samples along the first axis.

use crate::data::read_input_sets;
use crate::inputs::{InputSpec, random_inputs};
use std::path::Path;
use whittle_ir::{Dim, Graph, Tensor};

/// Samples per set when the model's batch dim is free (one tract run per set).
const BATCH: i64 = 64;

/// The graph inputs fed at run time (inputs that are not initializers), by name.
pub fn feed_names(g: &Graph) -> Vec<String> {
    g.inputs()
        .iter()
        .filter(|v| g.value(**v).initializer().is_none())
        .map(|v| g.value(*v).name().to_string())
        .collect()
}

/// The declared dims of the inputs `names` (None where unknown).
fn declared_dims(g: &Graph, names: &[String]) -> Vec<Option<Vec<Dim>>> {
    names
        .iter()
        .map(|n| {
            g.find(n)
                .and_then(|v| g.value(v).info.ty.as_ref())
                .and_then(|t| t.dims())
        })
        .collect()
}

/// Calibration sets from `path` (a `.npy` for a single-input model, an `.npz`, or a folder
/// of `test_data_set_N` folders), with the first axis of every array read as samples:
/// arrays one rank above the input are split into single samples; arrays whose first
/// dim is a multiple of a fixed batch dim are split into batches; with a free batch dim
/// samples are run up to 64 at a time.
pub fn calibration_sets(path: &Path, g: &Graph) -> Result<Vec<Vec<Tensor>>, String> {
    let names = feed_names(g);
    let declared = declared_dims(g, &names);
    let mut out = Vec::new();
    for set in read_input_sets(path, &names)? {
        out.extend(split(&set, &declared).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(out)
}

/// Calibration sets cut in two: the sets a lossy step fits on and the held-out sets its
/// budget is judged on.
#[derive(Clone, Debug, Default)]
pub struct Split {
    pub fit: Vec<Vec<Tensor>>,
    pub held: Vec<Vec<Tensor>>,
    /// Samples on each side.
    pub fit_samples: i64,
    pub held_samples: i64,
}

/// Like [`calibration_sets`], with a share `holdout` (0 to 1) of the samples held out:
/// sample i (counted over the whole file, in order) is held out when ⌊(i+1)·holdout⌋ >
/// ⌊i·holdout⌋, which spreads the held-out samples evenly through the data (a file
/// sorted by class gives both sides every class). A model with a fixed batch dim is
/// split by whole batches.
pub fn calibration_split(path: &Path, g: &Graph, holdout: f64) -> Result<Split, String> {
    let names = feed_names(g);
    let declared = declared_dims(g, &names);
    let at = |e: String| format!("{}: {e}", path.display());
    let holdout = holdout.clamp(0.0, 1.0);
    let mut out = Split::default();
    let mut unit_index = 0u64;
    for set in read_input_sets(path, &names)? {
        let Some(first) = set.first() else { continue };
        let unit = batch_unit(first, declared.first().cloned().flatten().as_deref());
        let units = (first.dims.first().copied().unwrap_or(1).max(1) / unit) as usize;
        let (mut fit, mut held) = (Vec::new(), Vec::new());
        for k in 0..units {
            let i = unit_index as f64;
            unit_index += 1;
            match ((i + 1.0) * holdout).floor() > (i * holdout).floor() {
                true => held.push(k),
                false => fit.push(k),
            }
        }
        for (idx, sets, count) in [
            (&fit, &mut out.fit, &mut out.fit_samples),
            (&held, &mut out.held, &mut out.held_samples),
        ] {
            if idx.is_empty() {
                continue;
            }
            let part = set
                .iter()
                .map(|t| take_units(t, idx, unit))
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            *count += idx.len() as i64 * unit;
            sets.extend(split(&part, &declared).map_err(at)?);
        }
    }
    Ok(out)
}

/// Samples per indivisible unit of `t`: the fixed batch of a model whose input has the
/// array's rank, else 1.
fn batch_unit(t: &Tensor, decl: Option<&[Dim]>) -> i64 {
    match decl {
        Some(d) if d.len() == t.dims.len() => match d.first() {
            Some(Dim::Known(b)) if *b > 1 => *b,
            _ => 1,
        },
        _ => 1,
    }
}

/// The units `idx` (each `unit` rows along axis 0) of `t`, in order.
fn take_units(t: &Tensor, idx: &[usize], unit: i64) -> Result<Tensor, String> {
    let bytes = t.le_bytes().map_err(|e| e.to_string())?;
    let rows = t.dims.first().copied().unwrap_or(1).max(1);
    let per = bytes.len() / rows as usize * unit as usize;
    let mut out = Vec::with_capacity(idx.len() * per);
    for k in idx {
        let part = bytes.get(k * per..(k + 1) * per).ok_or_else(|| {
            format!(
                "input '{}' has {rows} samples, fewer than the others",
                t.name()
            )
        })?;
        out.extend_from_slice(part);
    }
    let mut dims = t.dims.clone();
    if let Some(d) = dims.first_mut() {
        *d = idx.len() as i64 * unit;
    }
    let mut taken = Tensor::from_raw(t.dtype(), dims, bytes::Bytes::from(out));
    taken.name = t.name.clone();
    Ok(taken)
}

/// Cuts one set into runnable sets along axis 0 (all inputs cut alike).
fn split(set: &[Tensor], declared: &[Option<Vec<Dim>>]) -> Result<Vec<Vec<Tensor>>, String> {
    let Some(first) = set.first() else {
        return Ok(Vec::new());
    };
    let samples = first.dims.first().copied().unwrap_or(1).max(1);
    let decl = declared.first().cloned().flatten();
    let (step, squeeze) = match decl.as_deref() {
        Some(d) if d.len() + 1 == first.dims.len() => (1, true),
        Some(d) if d.len() == first.dims.len() => match d.first() {
            Some(Dim::Known(b)) if *b > 0 && samples % b == 0 => (*b, false),
            Some(Dim::Known(b)) => {
                return Err(format!(
                    "{} samples do not split into batches of {b}",
                    samples
                ));
            }
            _ => (BATCH.min(samples), false),
        },
        _ => (samples, false),
    };
    if step >= samples && !squeeze {
        return Ok(vec![set.to_vec()]);
    }
    let mut sets = Vec::new();
    let mut at = 0;
    while at < samples {
        let n = step.min(samples - at);
        let part = set
            .iter()
            .map(|t| slice_rows(t, at, n, squeeze))
            .collect::<Result<Vec<_>, _>>()?;
        sets.push(part);
        at += n;
    }
    Ok(sets)
}

/// Rows `[at, at + n)` of `t` along axis 0 (the axis dropped when `squeeze`, n = 1).
fn slice_rows(t: &Tensor, at: i64, n: i64, squeeze: bool) -> Result<Tensor, String> {
    let bytes = t.le_bytes().map_err(|e| e.to_string())?;
    let rows = t.dims.first().copied().unwrap_or(1).max(1);
    if t.dims.first().copied() != Some(rows) || at + n > rows {
        return Err(format!(
            "input '{}' has {rows} samples, fewer than the others",
            t.name()
        ));
    }
    let per = bytes.len() / rows as usize;
    let part = bytes.slice(at as usize * per..(at + n) as usize * per);
    let mut dims = t.dims.clone();
    if squeeze {
        dims.remove(0);
    } else {
        dims[0] = n;
    }
    let mut out = Tensor::from_raw(t.dtype(), dims, part);
    out.name = t.name.clone();
    Ok(out)
}

/// `count` seeded random input sets (free dims 1), for when no data is given.
pub fn random_sets(g: &Graph, count: usize) -> Result<Vec<Vec<Tensor>>, String> {
    seeded_sets(g, 0..count as u64)
}

/// `count` seeded random input sets whose free dims (named or not) are 1 on an input's
/// first axis (the batch) and `width` elsewhere: for steps that rank what varies over positions, which a
/// 1×1 image or a one-token sequence does not (a classifier's output on 1×1 noise is
/// nearly constant, so any pruning "holds" a budget on it).
pub fn spread_sets(g: &Graph, count: usize, width: i64) -> Result<Vec<Vec<Tensor>>, String> {
    spread_seeded(g, 0..count as u64, width)
}

/// [`spread_sets`] drawn from the seeds `seeds` (fit and held-out sets from disjoint
/// seeds).
pub fn spread_seeded(
    g: &Graph,
    seeds: std::ops::Range<u64>,
    width: i64,
) -> Result<Vec<Vec<Tensor>>, String> {
    let mut dims: Vec<(String, i64)> = Vec::new();
    for v in g.inputs() {
        let Some(shape) = g.value(*v).info.ty.as_ref().and_then(|t| t.dims()) else {
            continue;
        };
        for (axis, d) in shape.iter().enumerate() {
            if let Dim::Param(p) = d {
                let size = if axis == 0 { 1 } else { width };
                match dims.iter_mut().find(|(s, _)| s == p) {
                    Some(e) => e.1 = e.1.min(size),
                    None => dims.push((p.clone(), size)),
                }
            }
        }
    }
    seeds
        .map(|seed| {
            random_inputs(
                g,
                &InputSpec {
                    seed,
                    dims: dims.clone(),
                    default_dim: width,
                    batch_dim: Some(1),
                    ..InputSpec::default()
                },
            )
        })
        .collect()
}

/// One random input set per seed (free dims 1): tests calibrate on some seeds and judge
/// on others.
pub fn seeded_sets(g: &Graph, seeds: std::ops::Range<u64>) -> Result<Vec<Vec<Tensor>>, String> {
    seeds
        .map(|seed| {
            random_inputs(
                g,
                &InputSpec {
                    seed,
                    ..InputSpec::default()
                },
            )
        })
        .collect()
}
