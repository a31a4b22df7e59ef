//! Scoring a rewritten model against the original on the same inputs: mean output
//! cosine, top-1 agreement (plain and with a margin), relative error. Lossy passes judge
//! their plans with it.

use crate::bounds;
use crate::run::EvalError;
use crate::runtime::Runtime;
use crate::sets::SetRunner;
use whittle_ir::{Model, Tensor};

/// How the rewritten model's outputs compare with the original's on the data, with
/// one-sided 95 % lower confidence bounds ([`crate::bounds`]).
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
    /// Rows of the first output (what top-1 counts) and samples (what cosine's bound
    /// resamples: index along the first axis of each input set).
    pub rows: usize,
    pub samples: usize,
    /// Lower bound of the mean cosine (bootstrap over samples).
    pub cosine_low: f64,
    /// Lower bound of `stable` (exact binomial over rows).
    pub stable_low: f64,
}

impl Score {
    /// A score with bounds equal to the figures (tests, and plans scored without data).
    pub fn exact(cosine: f64, top1: f64, rel_err: f64) -> Score {
        Score {
            cosine,
            top1,
            stable: top1,
            rel_err,
            rows: 0,
            samples: 0,
            cosine_low: cosine,
            stable_low: top1,
        }
    }
}

/// Runs candidate models on the data and scores them against the original's outputs.
pub struct Judge {
    runtime: Runtime,
    sets: Vec<Vec<Tensor>>,
    reference: Vec<Vec<Output>>,
}

/// One output of one run.
struct Output {
    /// Last-axis length (the row width).
    width: usize,
    /// Length of the first axis (samples), 1 for rank below 2.
    samples: usize,
    values: Vec<f32>,
}

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

    /// A judge whose reference outputs on `sets` were already computed (`outputs`, one
    /// list per set): a run that checked the lossless phase on the same sets shares them.
    pub fn with_reference(
        runtime: &Runtime,
        sets: &[Vec<Tensor>],
        outputs: &[Vec<Tensor>],
    ) -> Result<Judge, EvalError> {
        let reference = outputs
            .iter()
            .map(|set| as_outputs(set, runtime.name()))
            .collect::<Result<_, _>>()?;
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
        let mut t = Tally::default();
        for (set_ref, set_out) in self.reference.iter().zip(&outs) {
            t.set(set_ref, set_out);
        }
        Ok(t.score())
    }

    /// Rows of the first output over all sets (what a top-1 budget is counted on).
    pub fn rows(&self) -> usize {
        self.reference
            .iter()
            .filter_map(|set| set.first())
            .map(|o| o.values.len() / o.width.max(1))
            .sum()
    }
}

/// Sums over the rows of every set while scoring.
#[derive(Default)]
struct Tally {
    cos_sum: f64,
    rows: usize,
    top_rows: usize,
    agree: usize,
    stable: usize,
    err: f64,
    energy: f64,
    /// Per sample: (sum of row cosines, rows).
    per_sample: Vec<(f64, usize)>,
}

impl Tally {
    /// Adds one set: the reference outputs and the candidate's.
    fn set(&mut self, reference: &[Output], got: &[Output]) {
        let base = self.per_sample.len();
        for (k, (r, o)) in reference.iter().zip(got).enumerate() {
            let width = r.width.max(1);
            let rows_per_sample = (r.values.len() / width / r.samples.max(1)).max(1);
            for (j, (a, b)) in r
                .values
                .chunks(width)
                .zip(o.values.chunks(width))
                .enumerate()
            {
                let c = cosine(a, b);
                self.cos_sum += c;
                self.rows += 1;
                let s = base + j / rows_per_sample;
                if self.per_sample.len() <= s {
                    self.per_sample.resize(s + 1, (0.0, 0));
                }
                self.per_sample[s].0 += c;
                self.per_sample[s].1 += 1;
                if k == 0 {
                    self.top_row(a, b);
                }
                for (x, y) in a.iter().zip(b) {
                    self.err += f64::from(x - y).powi(2);
                    self.energy += f64::from(*x).powi(2);
                }
            }
        }
    }

    fn top_row(&mut self, a: &[f32], b: &[f32]) {
        self.top_rows += 1;
        let same = argmax(a) == argmax(b);
        self.agree += usize::from(same);
        self.stable += usize::from(same && margin(b, argmax(a)) >= 0.5 * margin(a, argmax(a)));
    }

    fn score(&self) -> Score {
        let means: Vec<f64> = self
            .per_sample
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(sum, n)| sum / *n as f64)
            .collect();
        let top = self.top_rows.max(1) as f64;
        Score {
            cosine: self.cos_sum / self.rows.max(1) as f64,
            top1: self.agree as f64 / top,
            stable: self.stable as f64 / top,
            rel_err: if self.energy > 0.0 {
                self.err / self.energy
            } else {
                self.err
            },
            rows: self.top_rows,
            samples: means.len(),
            cosine_low: bounds::mean_lower(&means),
            stable_low: bounds::agreement_lower(self.stable, self.top_rows),
        }
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
        all.push(as_outputs(&runner.run(set)?, runner.runtime_name())?);
    }
    Ok(all)
}

/// One run's output tensors as the judge compares them.
fn as_outputs(tensors: &[Tensor], runtime: &'static str) -> Result<Vec<Output>, EvalError> {
    tensors
        .iter()
        .map(|t| {
            let width = t.dims.last().copied().unwrap_or(1).max(1) as usize;
            let samples = match t.dims.len() {
                0 | 1 => 1,
                _ => t.dims[0].max(1) as usize,
            };
            t.to_f32_vec()
                .map(|values| Output {
                    width,
                    samples,
                    values,
                })
                .map_err(|e| EvalError::Run {
                    runtime,
                    model: "judged model".into(),
                    reason: e.to_string(),
                })
        })
        .collect()
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
