//! Scoring a rewritten model against the original on the same inputs: mean output
//! cosine, top-1 agreement (plain and with a margin), relative error. Lossy passes judge
//! their plans with it.

use crate::run::EvalError;
use crate::runtime::Runtime;
use crate::sets::SetRunner;
use whittle_ir::{Model, Tensor};

/// How the rewritten model's outputs compare with the original's on the data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Mean over output rows (last axis) of the cosine similarity.
    pub cosine: f64,
    /// Share of rows of the first output whose argmax is unchanged.
    pub top1: f64,
    /// Share of rows whose argmax is unchanged and still wins by at least half of its
    /// original margin over the runner-up: the agreement the top-1 budget counts, so a
    /// plan that only just holds on the calibration rows does not pass.
    pub stable: f64,
    /// Σ‖y' − y‖² / Σ‖y‖² over every output.
    pub rel_err: f64,
}

/// Runs candidate models on the data and scores them against the original's outputs.
pub struct Judge {
    runtime: Runtime,
    sets: Vec<Vec<Tensor>>,
    reference: Vec<Vec<Output>>,
}

/// One output of one run: its last-axis length (the row width) and values.
type Output = (usize, Vec<f32>);

impl Judge {
    /// Runs the original `model` on `sets` in `runtime` once for the reference outputs.
    pub fn new(runtime: &Runtime, model: &Model, sets: &[Vec<Tensor>]) -> Result<Judge, EvalError> {
        let reference = run_all(runtime, model, sets)?;
        Ok(Judge {
            runtime: runtime.clone(),
            sets: sets.to_vec(),
            reference,
        })
    }

    /// The runtime the judge runs models in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Scores `model` against the reference.
    pub fn score(&self, model: &Model) -> Result<Score, EvalError> {
        let outs = run_all(&self.runtime, model, &self.sets)?;
        let (mut cos_sum, mut rows, mut agree, mut top_rows, mut err, mut energy) =
            (0.0, 0usize, 0usize, 0usize, 0.0, 0.0);
        let mut stable = 0usize;
        for (set_ref, set_out) in self.reference.iter().zip(&outs) {
            for (k, ((width, r), (_, o))) in set_ref.iter().zip(set_out).enumerate() {
                let width = (*width).max(1);
                for (a, b) in r.chunks(width).zip(o.chunks(width)) {
                    cos_sum += cosine(a, b);
                    rows += 1;
                    if k == 0 {
                        top_rows += 1;
                        let same = argmax(a) == argmax(b);
                        agree += usize::from(same);
                        stable +=
                            usize::from(same && margin(b, argmax(a)) >= 0.5 * margin(a, argmax(a)));
                    }
                    for (x, y) in a.iter().zip(b) {
                        err += f64::from(x - y).powi(2);
                        energy += f64::from(*x).powi(2);
                    }
                }
            }
        }
        Ok(Score {
            cosine: cos_sum / rows.max(1) as f64,
            top1: agree as f64 / top_rows.max(1) as f64,
            stable: stable as f64 / top_rows.max(1) as f64,
            rel_err: if energy > 0.0 { err / energy } else { err },
        })
    }
}

fn run_all(
    runtime: &Runtime,
    model: &Model,
    sets: &[Vec<Tensor>],
) -> Result<Vec<Vec<Output>>, EvalError> {
    let mut runner = SetRunner::new(runtime, model, "judged model", sets);
    let mut all = Vec::new();
    for set in sets {
        let outs = runner.run(set)?;
        let outs: Result<Vec<Output>, _> = outs
            .iter()
            .map(|t| {
                let width = t.dims.last().copied().unwrap_or(1).max(1) as usize;
                t.to_f32_vec()
                    .map(|v| (width, v))
                    .map_err(|e| EvalError::Run {
                        runtime: runner.runtime_name(),
                        model: "judged model".into(),
                        reason: e.to_string(),
                    })
            })
            .collect();
        all.push(outs?);
    }
    Ok(all)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 && bb == 0.0 {
        1.0
    } else if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// How far class `k` leads the best other class in `a` (negative when it does not lead).
fn margin(a: &[f32], k: usize) -> f64 {
    let best_other = a
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != k)
        .map(|(_, v)| f64::from(*v))
        .fold(f64::NEG_INFINITY, f64::max);
    a.get(k).map_or(0.0, |v| f64::from(*v) - best_other)
}

fn argmax(a: &[f32]) -> usize {
    a.iter()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(y.1))
        .map_or(0, |(i, _)| i)
}
