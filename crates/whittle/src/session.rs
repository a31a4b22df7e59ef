//! The one driver. Every entry point — `optimize`, `--verify`, `--check`, many-model
//! batches, the library, build scripts — runs a model through [`Optimizer::execute`],
//! so the path that is verified is the path that writes. A run has phases, as rustc's
//! MIR has:
//!
//! 0. **prepare**: exact conversions the plan needs first (an opset upgrade);
//! 1. **lossless**: the level's passes to a fixed point (a warning names the passes
//!    still changing if none is reached); with verification, checked exactly, and a
//!    rewrite that changes the outputs is bisected and rolled back;
//! 2. **lossy**: each [`ModelStep`](crate::steps::ModelStep) once, in order
//!    (decomposition, then quantization); no lossless pass runs over their encodings;
//! 3. **clean-up**: only dead code and duplicates go (the plan's own passes of that
//!    kind, dead code always).
//!
//! With verification, the lossy steps are then judged against their error budget on the
//! verification inputs (and reported when they have none).

use crate::optimizer::{Error, Optimizer};
use crate::report::{LossyCheck, PassReport, Report, Rewrite, size};
use crate::steps::{self, ModelStep, StepData, merge, prepare};
use crate::verified::{LosslessCheck, Verification, optimize_verified, reference_outputs};
use whittle_eval::{Judge, Runtime, Tolerance};
use whittle_ir::{Model, Tensor};
use whittle_passes::{PassCx, PassStat, Pipeline};

/// What `--verify` checks the result on.
#[derive(Clone, Debug)]
pub struct Verify {
    /// Input sets, in the order of the model's inputs.
    pub sets: Vec<Vec<Tensor>>,
    /// How close counts as equal for the lossless phase.
    pub tolerance: Tolerance,
    /// Fail on a lossless mismatch (or a missed budget) instead of rolling back.
    pub strict: bool,
}

/// Called with each pass's or step's name and the model after it.
pub type Observer<'a> = &'a mut dyn FnMut(&str, &Model);

/// How one run goes beyond the settings: verification, a rewrite limit, an observer.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Check the result against the original (`--verify`).
    pub verify: Option<&'a Verify>,
    /// Stop rewriting after this many rewrites (`--bisect-limit`).
    pub rewrite_limit: Option<usize>,
    /// Called with each pass's or step's name and the model after it ran
    /// (`--print-after`, progress). With verification it also sees the attempts that
    /// were rolled back; the last call for a pass is the model that was kept.
    pub observer: Option<Observer<'a>>,
    /// Record the region every rewrite changes (`--certificate`).
    pub record_edits: bool,
}

/// A model's outputs, per input set.
type Outputs = Vec<Vec<Tensor>>;

/// The lossless phase checked against `original` on the verification sets: the original's
/// outputs are computed once, here, and returned for the lossy judge to share.
fn verified(
    original: &Model,
    model: &mut Model,
    (lossless, cx): (&Pipeline, &mut PassCx),
    (rt, v): (&Runtime, &Verify),
    after: &mut dyn FnMut(&str, &Model),
) -> Result<(Vec<PassStat>, Verification, Outputs), Error> {
    let reference = reference_outputs(rt, original, &v.sets)?;
    let check = LosslessCheck {
        runtime: rt,
        reference: Some(&reference),
        sets: &v.sets,
        tolerance: &v.tolerance,
        strict: v.strict,
    };
    let (m, stats, ver) = optimize_verified(original, model, lossless, cx, check, after)?;
    *model = m;
    cx.remaining = cx.remaining.map(|b| b.saturating_sub(ver.log.len()));
    cx.journal.log.clone_from(&ver.log);
    cx.journal.regions.clone_from(&ver.regions);
    Ok((stats, ver, reference))
}

impl Optimizer {
    /// Runs every phase the settings ask for on `model` (see the module docs) and
    /// returns what was done. On an error `model` may be part-way rewritten; callers
    /// that must not lose it work on a copy (the CLI writes only after success).
    pub fn execute(&self, model: &mut Model, run: RunOptions) -> Result<Report, Error> {
        let (nodes_before, bytes_before) = size(model);
        let mut noop = |_: &str, _: &Model| {};
        let after: &mut dyn FnMut(&str, &Model) = match run.observer {
            Some(f) => f,
            None => &mut noop,
        };
        let mut cx = self.pass_cx(run.rewrite_limit);
        cx.settings.record_edits = run.record_edits;
        let original = run.verify.map(|_| model.clone());
        prepare::raise(model, self.opset, self.quantize.as_ref(), &mut cx)?;
        let lossless = self.lossless_pipeline()?;
        let lossy = self.lossy_steps()?;
        let runtime = match run.verify.is_some() || !lossy.is_empty() {
            true => Some(self.load_runtime()?),
            false => None,
        };
        let rt = runtime.clone().unwrap_or_default();
        let (mut stats, verification, reference) = match (run.verify, &original) {
            (Some(v), Some(original)) => {
                let on = (&rt, v);
                let (stats, ver, reference) =
                    verified(original, model, (&lossless, &mut cx), on, after)?;
                (stats, Some(ver), Some(reference))
            }
            _ => (lossless.run_observed(model, &mut cx, after)?, None, None),
        };
        let mut data = StepData::prepare(
            (&rt, self.holdout_share()),
            model,
            self.calibrate.as_deref(),
            lossy.iter().any(|s| s.needs_data()),
            self.quantize.is_some() && self.quant_budget.is_some(),
        )?;
        for step in &lossy {
            let _span = tracing::info_span!("step", name = step.name()).entered();
            merge(&mut stats, step.run(model, &mut cx, &mut data, after)?);
        }
        if !lossy.is_empty() {
            let cleanup = Pipeline::cleanup(&lossless.names());
            merge(&mut stats, cleanup.run_observed(model, &mut cx, after)?);
        }
        prepare::declare_domains(model);
        let lossy_check = match (run.verify, &original, lossy.is_empty()) {
            (Some(v), Some(original), false) => {
                let on = (&rt, reference.as_deref());
                Some(self.judge_lossy(on, original, model, v)?)
            }
            _ => None,
        };
        let (nodes_after, bytes_after) = size(model);
        Ok(Report {
            nodes_before,
            nodes_after,
            initializer_bytes_before: bytes_before,
            initializer_bytes_after: bytes_after,
            passes: stats.iter().map(pass_report).collect(),
            rewrites: cx
                .journal
                .log
                .into_iter()
                .map(|(pass, rule, node)| Rewrite { pass, rule, node })
                .collect(),
            notes: cx.journal.notes,
            regions: cx.journal.regions,
            decompose: data.decomposed,
            prune: data.pruned,
            verification,
            lossy: lossy_check,
            runtime: runtime.as_ref().map(Runtime::describe),
        })
    }

    /// The share of calibration samples held out: `--holdout` when some step has a
    /// whole-model budget to judge, else none (nothing is judged, so every sample fits).
    fn holdout_share(&self) -> f64 {
        let judged = [
            self.quant_budget,
            self.decompose.as_ref().map(|d| d.budget),
            self.prune.as_ref().map(|p| p.budget),
        ]
        .into_iter()
        .flatten()
        .any(|b| b.is_whole_model());
        if judged { self.holdout } else { 0.0 }
    }

    /// Every name `--print-after` may take in this plan, in the order they run.
    pub fn stage_names(&self) -> Result<Vec<&'static str>, Error> {
        let lossless = self.lossless_pipeline()?;
        let mut names = lossless.names();
        for step in self.lossy_steps()? {
            names.extend(step.pass_names());
        }
        names.extend(Pipeline::cleanup(&lossless.names()).names());
        names.dedup();
        Ok(names)
    }

    /// The lossy phase's steps, in order: pruning, decomposition, then quantization.
    fn lossy_steps(&self) -> Result<Vec<Box<dyn ModelStep>>, Error> {
        let mut out: Vec<Box<dyn ModelStep>> = Vec::new();
        if let Some(options) = &self.prune {
            // Quantization after pruning holds the whole budget against the model before
            // pruning; pruning gets the share quantization alone leaves (measured).
            let shared = self.quantize.is_some() && self.quant_budget == Some(options.budget);
            out.push(Box::new(steps::PruneStep {
                options: options.clone(),
                lossless: self.lossless_pipeline()?,
                then_quantize: shared.then(|| self.quantize_step()).flatten(),
            }));
        }
        if let Some(options) = &self.decompose {
            out.push(Box::new(steps::DecomposeStep {
                options: options.clone(),
                lossless: self.lossless_pipeline()?,
            }));
        }
        if let Some(q) = self.quantize_step() {
            out.push(Box::new(q));
        }
        Ok(out)
    }

    /// The quantize step of this plan, if it quantizes.
    fn quantize_step(&self) -> Option<steps::QuantizeStep> {
        self.quantize.as_ref().map(|mode| steps::QuantizeStep {
            mode: mode.clone(),
            budget: self.quant_budget,
        })
    }

    /// Scores the lossy result against `original` on the verification inputs and holds
    /// it to the plan's budget (quantization's, else decomposition's).
    fn judge_lossy(
        &self,
        (runtime, reference): (&Runtime, Option<&[Vec<Tensor>]>),
        original: &Model,
        model: &Model,
        v: &Verify,
    ) -> Result<LossyCheck, Error> {
        let bad = |e: whittle_eval::EvalError| {
            Error::BudgetMissed(format!("judging the lossy steps: {e}"))
        };
        let judge = match reference {
            Some(r) => Judge::with_reference(runtime, &v.sets, r),
            None => Judge::new(runtime, original, &v.sets),
        };
        let score = judge.map_err(bad)?.score(model).map_err(bad)?;
        let budget = self
            .quant_budget
            .or_else(|| self.decompose.as_ref().map(|d| d.budget))
            .or_else(|| self.prune.as_ref().map(|p| p.budget));
        let held = budget.is_none_or(|b| b.holds(&score));
        if let (false, Some(b)) = (held, budget) {
            let what = format!(
                "the lossy steps miss budget {b} on the verification inputs (cosine {:.6}, \
                 top-1 {:.4})",
                score.cosine, score.top1
            );
            if v.strict {
                return Err(Error::BudgetMissed(what));
            }
            tracing::warn!("{what}");
        }
        Ok(LossyCheck {
            score,
            budget,
            held,
        })
    }
}

fn pass_report(s: &PassStat) -> PassReport {
    PassReport {
        name: s.name,
        rewrites: s.rewrites,
        time: s.time,
    }
}
