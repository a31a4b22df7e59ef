//! The lossy phase's steps. Each runs once, in order, on the model the step before it
//! left: decomposition, then quantization. A step may measure the model (calibration
//! ranges, per-layer sensitivities, budget searches), which is why steps are whole-model
//! [`ModelStep`]s rather than rules inside the lossless fixed point.

mod data;
mod decompose;
mod int4_block;
mod int8_form;
mod nbits_level;
pub(crate) mod prepare;
mod prune;
mod quantize;

pub(crate) use data::StepData;
pub(crate) use decompose::DecomposeStep;
pub(crate) use nbits_level::first_sample;
pub(crate) use prune::PruneStep;
pub(crate) use quantize::{AUTO_NEEDS_BUDGET, QuantizeStep};

use crate::optimizer::Error;
use whittle_ir::Model;
use whittle_passes::{PassCx, PassStat};

/// A whole-model step of the lossy phase.
pub(crate) trait ModelStep {
    /// The step's name (`--print-after`, the report).
    fn name(&self) -> &'static str;
    /// The passes this step runs, by the names the report gives them.
    fn pass_names(&self) -> Vec<&'static str>;
    /// Whether the step runs the model on data (so the driver prepares it once).
    fn needs_data(&self) -> bool;
    /// Rewrites `model`; `cx` carries the settings and the journal, `data` the inputs
    /// measured on the model the lossless phase left. Returns what each pass did.
    fn run(
        &self,
        model: &mut Model,
        cx: &mut PassCx,
        data: &mut StepData,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<Vec<PassStat>, Error>;
}

/// Runs a data step (`work` rewrites the model on the prepared sets and returns its
/// report and how many sites it rewrote), shows the result to `after`, then lets the
/// lossless pipeline tidy it. Returns the pass statistics and the report.
pub(crate) fn data_step<R>(
    name: &'static str,
    lossless: &whittle_passes::Pipeline,
    model: &mut Model,
    cx: &mut PassCx,
    data: &StepData,
    after: &mut dyn FnMut(&str, &Model),
    work: impl FnOnce(
        &mut Model,
        &whittle_compress::decompose::Data,
        &mut PassCx,
    ) -> Result<(R, usize), Error>,
) -> Result<(Vec<PassStat>, R), Error> {
    let Some(sets) = &data.sets else {
        return Err(Error::Config(format!("{name}: no input data was prepared")));
    };
    let start = std::time::Instant::now();
    let (report, rewrites) = work(model, sets, cx)?;
    let mut stats = vec![PassStat {
        name,
        rewrites,
        time: start.elapsed(),
    }];
    after(name, model);
    merge(&mut stats, lossless.run_observed(model, cx, after)?);
    Ok((stats, report))
}

/// Adds what `more` did to `stats` (same pass: counts and times summed).
pub(crate) fn merge(stats: &mut Vec<PassStat>, more: Vec<PassStat>) {
    for s in more {
        match stats.iter_mut().find(|x| x.name == s.name) {
            Some(x) => {
                x.rewrites += s.rewrites;
                x.time += s.time;
            }
            None => stats.push(s),
        }
    }
}
