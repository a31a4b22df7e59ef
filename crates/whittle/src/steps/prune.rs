//! Pruning as a lossy step: remove channels within the budget, refit their readers, then
//! let the lossless passes tidy what is left.

use super::{ModelStep, StepData, data_step};
use crate::optimizer::Error;
use whittle_ir::Model;
use whittle_passes::prune;
use whittle_passes::{PassCx, PassStat, Pipeline};

/// `--prune`: the options and the lossless pipeline to run after it (what it did goes
/// to [`StepData::pruned`]).
pub(crate) struct PruneStep {
    pub(crate) options: prune::Options,
    pub(crate) lossless: Pipeline,
}

impl ModelStep for PruneStep {
    fn name(&self) -> &'static str {
        "prune"
    }

    fn pass_names(&self) -> Vec<&'static str> {
        vec!["prune"]
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
            "prune",
            &self.lossless,
            model,
            cx,
            data,
            after,
            |m, sets, cx| {
                if !sets.calibrated {
                    tracing::warn!(
                        "prune without --calibrate: channels are chosen, refit and judged on random \
                     inputs, which says little about real data (vgg_digits loses most of its \
                     accuracy this way); give --calibrate"
                    );
                }
                let report = prune::prune(m, &self.options, sets, cx)?;
                let rewrites = report.groups.iter().filter(|g| g.kept < g.total).count();
                Ok((report, rewrites))
            },
        )?;
        data.pruned = Some(report);
        Ok(stats)
    }
}
