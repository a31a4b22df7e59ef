//! Pruning as a lossy step: remove channels within the budget, refit their readers, then
//! let the lossless passes tidy what is left.

use super::{ModelStep, StepData, merge};
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
        let Some(sets) = &data.sets else {
            return Err(Error::Config("prune: no input data was prepared".into()));
        };
        if !sets.calibrated {
            tracing::warn!(
                "prune without --calibrate: channels are chosen, refit and judged on random \
                 inputs, which says little about real data (vgg_digits loses most of its \
                 accuracy this way); give --calibrate"
            );
        }
        let start = std::time::Instant::now();
        let report = prune::prune(model, &self.options, sets, cx)?;
        let mut stats = vec![PassStat {
            name: "prune",
            rewrites: report.groups.iter().filter(|g| g.kept < g.total).count(),
            time: start.elapsed(),
        }];
        data.pruned = Some(report);
        after("prune", model);
        merge(&mut stats, self.lossless.run_observed(model, cx, after)?);
        Ok(stats)
    }
}
