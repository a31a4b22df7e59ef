//! Decomposition as a lossy step: factor layers within the budget, then let the lossless
//! passes tidy what the factors became.

use super::{ModelStep, StepData, data_step};
use crate::optimizer::Error;
use whittle_compress::decompose;
use whittle_ir::Model;
use whittle_passes::{PassCx, PassStat, Pipeline};

/// `--decompose`: the options and the lossless pipeline to run after it (what it did
/// goes to [`StepData::decomposed`]).
pub(crate) struct DecomposeStep {
    pub(crate) options: decompose::Options,
    pub(crate) lossless: Pipeline,
}

impl ModelStep for DecomposeStep {
    fn name(&self) -> &'static str {
        "decompose"
    }

    fn pass_names(&self) -> Vec<&'static str> {
        vec!["decompose"]
    }

    fn needs_data(&self) -> bool {
        true
    }

    fn run(
        &self,
        model: &mut Model,
        cx: &mut PassCx,
        data: &mut StepData,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<Vec<PassStat>, Error> {
        let (stats, report) = data_step(
            "decompose",
            &self.lossless,
            model,
            cx,
            data,
            after,
            |m, sets, cx| {
                let report = decompose::decompose(m, &self.options, sets, cx)?;
                let rewrites = report.layers.iter().filter(|l| l.chosen.is_some()).count();
                Ok((report, rewrites))
            },
        )?;
        data.decomposed = Some(report);
        Ok(stats)
    }
}
