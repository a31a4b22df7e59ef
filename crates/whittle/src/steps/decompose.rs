//! Decomposition as a lossy step: factor layers within the budget, then let the lossless
//! passes tidy what the factors became.

use super::{ModelStep, StepData, merge};
use crate::optimizer::Error;
use whittle_ir::Model;
use whittle_passes::decompose;
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
        let Some(sets) = &data.sets else {
            return Err(Error::Config(
                "decompose: no input data was prepared".into(),
            ));
        };
        let start = std::time::Instant::now();
        let report = decompose::decompose(model, &self.options, sets, cx)?;
        let mut stats = vec![PassStat {
            name: "decompose",
            rewrites: report.layers.iter().filter(|l| l.chosen.is_some()).count(),
            time: start.elapsed(),
        }];
        data.decomposed = Some(report);
        after("decompose", model);
        merge(&mut stats, self.lossless.run_observed(model, cx, after)?);
        Ok(stats)
    }
}
