//! The lossy phase's steps. Each runs once, in order, on the model the step before it
//! left: decomposition, then quantization. A step may measure the model (calibration
//! ranges, per-layer sensitivities, budget searches), which is why steps are whole-model
//! [`ModelStep`]s rather than rules inside the lossless fixed point.

mod data;
mod decompose;
pub(crate) mod prepare;
mod prune;
mod quantize;

pub(crate) use data::StepData;
pub(crate) use decompose::DecomposeStep;
pub(crate) use prune::PruneStep;
pub(crate) use quantize::QuantizeStep;

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
