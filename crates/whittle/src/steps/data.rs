//! The data lossy steps run the model on: calibration sets from a file, else seeded
//! random sets; and the judge that holds whole-model budgets, made once on the model the
//! lossless phase left (before any lossy step).

use crate::optimizer::Error;
use std::path::{Path, PathBuf};
use whittle_compress::decompose::{Data, DecomposeReport};
use whittle_compress::quant::QuantError;
use whittle_eval::{Judge, Runtime};
use whittle_ir::{Model, Tensor};

/// Random input sets the lossy steps run on when no calibration data is given.
pub(crate) const RANDOM_SETS: usize = 16;

/// What the driver prepares for the lossy steps.
#[derive(Default)]
pub(crate) struct StepData {
    /// The share of calibration samples held out for judging (`--holdout`).
    pub(crate) holdout: f64,
    /// The runtime every step runs the model in (its sets carry it too).
    pub(crate) runtime: Runtime,
    /// Input sets (calibration or random), when a step needs them.
    pub(crate) sets: Option<Data>,
    /// The scorer of a whole-model quantization budget.
    pub(crate) judge: Option<Judge>,
    /// The calibration file, if any (int8-static reads it again on its own model).
    pub(crate) calibrate: Option<PathBuf>,
    /// What decomposition did, for the report.
    pub(crate) decomposed: Option<DecomposeReport>,
    /// What pruning did, for the report.
    pub(crate) pruned: Option<whittle_compress::prune::PruneReport>,
}

impl StepData {
    /// Reads or makes the sets for `model`, and the judge when `judged`.
    pub(crate) fn prepare(
        (runtime, holdout): (&Runtime, f64),
        model: &Model,
        calibrate: Option<&Path>,
        needed: bool,
        judged: bool,
    ) -> Result<StepData, Error> {
        let mut d = StepData {
            runtime: runtime.clone(),
            holdout,
            calibrate: calibrate.map(Path::to_path_buf),
            ..StepData::default()
        };
        if !needed && !judged {
            return Ok(d);
        }
        let sets = match calibrate {
            Some(path) => calibration_data(path, model, (runtime, holdout))?,
            None => random_data(model, runtime)?,
        };
        if judged {
            d.judge = Some(Judge::new(runtime, model, sets.judged()).map_err(QuantError::from)?);
        }
        d.sets = Some(sets);
        Ok(d)
    }
}

/// Seeded random sets shaped by the model's inputs (free dims 1): 16 fit on, 16 others
/// (other seeds) judged on.
fn random_data(model: &Model, runtime: &Runtime) -> Result<Data, Error> {
    random_as(
        |seeds| whittle_eval::seeded_sets(&model.graph, seeds),
        "",
        runtime,
    )
}

/// Free dims beyond the batch in [`spread_random_data`].
const SPREAD_WIDTH: i64 = 16;

/// Seeded random sets whose free dims are 16 beyond the batch (an image's height and
/// width, a sequence's length): pruning without data ranks channels by how they vary over
/// positions, and the usual free dims of 1 give it a 1×1 image or a one-token sequence.
pub(crate) fn spread_random_data(model: &Model, runtime: &Runtime) -> Result<Data, Error> {
    random_as(
        |seeds| whittle_eval::spread_seeded(&model.graph, seeds, SPREAD_WIDTH),
        &format!(", free dims {SPREAD_WIDTH} beyond the batch"),
        runtime,
    )
}

/// Random step data: the sets `draw` makes from seeds 0..16 to fit on and from 16..32 to
/// judge on, its source saying how they were drawn (`how`).
fn random_as(
    draw: impl Fn(std::ops::Range<u64>) -> Result<Vec<Vec<Tensor>>, String>,
    how: &str,
    runtime: &Runtime,
) -> Result<Data, Error> {
    let n = RANDOM_SETS as u64;
    let bad = |reason: String| Error::Calibration {
        path: PathBuf::from("(random inputs)"),
        reason,
    };
    Ok(Data {
        sets: draw(0..n).map_err(bad)?,
        held: draw(n..2 * n).map_err(bad)?,
        runtime: runtime.clone(),
        calibrated: false,
        source: format!(
            "random inputs ({n} sets fit on, {n} others judged on{how}; no --calibrate: \
             budget judged on noise)"
        ),
    })
}

/// The calibration sets in `path`, cut to fit the model's inputs, with the share
/// `holdout` of the samples held out for judging budgets.
pub(crate) fn calibration_data(
    path: &Path,
    model: &Model,
    (runtime, holdout): (&Runtime, f64),
) -> Result<Data, Error> {
    let bad = |reason: String| Error::Calibration {
        path: path.to_path_buf(),
        reason,
    };
    let split = whittle_eval::calibration_split(path, &model.graph, holdout).map_err(bad)?;
    let all = split.fit_samples + split.held_samples;
    let source = match split.held_samples {
        0 => format!(
            "calibration data ({all} samples from {}; none held out: budget judged on the \
             data it was fit on)",
            path.display()
        ),
        held => format!(
            "calibration data ({all} samples from {}: fit on {}, budget judged on the other \
             {held}, held out)",
            path.display(),
            split.fit_samples
        ),
    };
    if split.fit.is_empty() {
        return Err(bad(format!(
            "{all} samples leave none to fit on with --holdout {holdout}"
        )));
    }
    Ok(Data {
        sets: split.fit,
        held: split.held,
        runtime: runtime.clone(),
        calibrated: true,
        source,
    })
}
