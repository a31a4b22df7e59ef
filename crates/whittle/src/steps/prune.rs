//! Pruning as a lossy step: remove channels within the budget, refit their readers, then
//! let the lossless passes tidy what is left.

use super::data::spread_random_data;
use super::{ModelStep, QuantizeStep, StepData, data_step};
use crate::optimizer::Error;
use whittle_compress::ErrorBudget;
use whittle_compress::prune;
use whittle_compress::quant::QuantError;
use whittle_ir::Model;
use whittle_passes::{PassCx, PassStat, Pipeline};

/// What quantization alone is assumed to spend of a shared budget, over what it spent
/// on the model before pruning: the two errors add only roughly, and quantization meets
/// activations pruning has moved.
const QUANT_MARGIN: f64 = 1.25;

/// The least share of a shared allowance pruning is given, even when quantization alone
/// spends more (quantization then keeps more layers float).
const PRUNE_FLOOR: f64 = 0.25;

/// `--prune`: the options and the lossless pipeline to run after it (what it did goes
/// to [`StepData::pruned`]).
pub(crate) struct PruneStep {
    pub(crate) options: prune::Options,
    pub(crate) lossless: Pipeline,
    /// The quantize step that follows under the same whole-model budget: pruning gets
    /// what quantization alone leaves of it ([`PruneStep::share`]).
    pub(crate) then_quantize: Option<QuantizeStep>,
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
        let mut options = self.options.clone();
        if let Some(q) = &self.then_quantize {
            let (budget, note) = self.share(q, model, cx, data)?;
            tracing::info!("{note}");
            cx.journal.notes.push(("prune".into(), note));
            options.budget = budget;
        }
        let (stats, report) = data_step(
            "prune",
            &self.lossless,
            model,
            cx,
            data,
            after,
            |m, sets, cx| {
                let spread;
                let sets = match sets.calibrated {
                    true => sets,
                    false => {
                        spread = spread_random_data(m, &sets.runtime)?;
                        &spread
                    }
                };
                if !sets.calibrated {
                    tracing::warn!(
                        "prune without --calibrate: channels are chosen, refit and judged on random \
                     inputs, which says little about real data (vgg_digits loses most of its \
                     accuracy this way); give --calibrate"
                    );
                }
                let report = prune::prune(m, &options, sets, cx)?;
                let rewrites = report.groups.iter().filter(|g| g.kept < g.total).count();
                Ok((report, rewrites))
            },
        )?;
        data.pruned = Some(report);
        Ok(stats)
    }
}

impl PruneStep {
    /// Pruning's share of a whole-model budget that quantization `q` also spends. `q` is
    /// run (the same step that will run after pruning) on a copy of `model` and its error
    /// measured on the budget's data (the report notes it); pruning gets what that leaves, with
    /// [`QUANT_MARGIN`] to spare, and never less than [`PRUNE_FLOOR`] of the allowance.
    /// A fixed split would leave allowance unused where quantization costs little
    /// (int8 on a trained encoder) and starve it where it costs much.
    fn share(
        &self,
        q: &QuantizeStep,
        model: &Model,
        cx: &PassCx,
        data: &mut StepData,
    ) -> Result<(ErrorBudget, String), Error> {
        let whole = self.options.budget;
        let Some(allowance) = whole.allowance() else {
            return Ok((whole, format!("budget {whole} is per layer: not shared")));
        };
        let mut trial = model.clone();
        q.run(&mut trial, &mut cx.fresh(), data, &mut |_, _| {})?;
        let Some(judge) = &data.judge else {
            return Err(Error::Config(
                "prune: no judge for the shared budget".into(),
            ));
        };
        let score = judge.score(&trial).map_err(QuantError::from)?;
        let spent = whole.spent(&score).unwrap_or(allowance);
        let left = (allowance - QUANT_MARGIN * spent).max(PRUNE_FLOOR * allowance);
        let budget = whole.with_allowance(left);
        let note = format!(
            "budget {whole} shared with quantization: quantization alone spends {spent:.5} of \
             the {allowance:.5} allowed; pruning is held to {budget}"
        );
        Ok((budget, note))
    }
}
