//! Verified optimization (`--verify`): run the lossless pipeline, check the result
//! against the original in the run's runtime (tract or ONNX Runtime) on the same inputs,
//! and when it differs, bisect over the rewrites to the first one that breaks it, roll
//! that rewrite back (deny its rule at that node) and go again. It lives with the driver,
//! not the pass library, because it runs models.

use thiserror::Error;
use whittle_eval::{OutputDiff, Runner, Runtime, Tolerance, compare_output};
use whittle_ir::{Model, Tensor};
use whittle_passes::{PassCx, PassSettings, PassStat, Pipeline};

/// At most this many rewrites are rolled back before giving up.
pub const MAX_ROLLBACKS: usize = 16;

/// What verification found and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verification {
    /// Rewrites rolled back, in the order found: (pass, rule, site, index of the rewrite).
    pub rolled_back: Vec<(String, String, String, usize)>,
    /// The final comparison, per input set and output.
    pub diffs: Vec<Vec<OutputDiff>>,
    /// Pipeline runs made (1 when the first result verified).
    pub runs: usize,
    /// The rewrites of the accepted run: (pass, rule, site).
    pub log: Vec<(&'static str, &'static str, String)>,
    /// The regions they changed, when a certificate records them (by log index).
    pub regions: Vec<(usize, whittle_certify::record::Region)>,
}

/// Why a verified optimization could not finish.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("cannot verify: {0}")]
    Eval(String),
    #[error("{0}")]
    Pass(#[from] whittle_passes::PassError),
    #[error(
        "the optimized model differs from the original ({0}) and --verify=strict forbids roll-back"
    )]
    Strict(String),
    #[error("still differs after rolling back {0} rewrites; giving up")]
    TooMany(usize),
}

/// Everything about one optimization attempt.
struct Attempt {
    model: Model,
    stats: Vec<PassStat>,
    log: Vec<(&'static str, &'static str, String)>,
    regions: Vec<(usize, whittle_certify::record::Region)>,
}

/// What the optimized model is checked on: input sets, how close is equal, and whether
/// a mismatch fails at once (`--verify=strict`) instead of being bisected and rolled back.
#[derive(Clone, Copy, Debug)]
pub struct LosslessCheck<'a> {
    /// The runtime both models run in.
    pub runtime: &'a Runtime,
    /// The original's outputs on `sets`, when the caller already has them
    /// ([`reference_outputs`]); else they are computed here.
    pub reference: Option<&'a [Vec<Tensor>]>,
    pub sets: &'a [Vec<Tensor>],
    pub tolerance: &'a Tolerance,
    pub strict: bool,
}

/// Runs `pipeline` on a copy of `start` with every setting of `base` (exclusions
/// included), `deny` in place of its deny list, and an optional rewrite budget.
fn attempt(
    start: &Model,
    pipeline: &Pipeline,
    base: &PassCx,
    deny: &[(String, String)],
    budget: Option<usize>,
    after: &mut dyn FnMut(&str, &Model),
) -> Result<Attempt, VerifyError> {
    let mut model = start.clone();
    let mut cx = PassCx::new(PassSettings {
        deny: deny.to_vec(),
        rewrite_limit: budget,
        ..base.settings.clone()
    });
    let stats = pipeline.run_observed(&mut model, &mut cx, after)?;
    Ok(Attempt {
        model,
        stats,
        log: cx.journal.log,
        regions: cx.journal.regions,
    })
}

/// The original model's outputs on every set of `sets`, run as written (what the
/// lossless check compares against, and what a lossy judge on the same sets can share).
pub fn reference_outputs(
    runtime: &Runtime,
    original: &Model,
    sets: &[Vec<Tensor>],
) -> Result<Vec<Vec<Tensor>>, VerifyError> {
    outputs(runtime, original, "original model", sets)
}

/// The model's outputs on every input set.
fn outputs(
    runtime: &Runtime,
    model: &Model,
    label: &str,
    sets: &[Vec<Tensor>],
) -> Result<Vec<Vec<Tensor>>, VerifyError> {
    let Some(first) = sets.first() else {
        return Ok(Vec::new());
    };
    let runner = Runner::exact(runtime, model, label, first)
        .map_err(|e| VerifyError::Eval(e.to_string()))?;
    sets.iter()
        .map(|s| runner.run(s).map_err(|e| VerifyError::Eval(e.to_string())))
        .collect()
}

/// Compares `model` against the reference outputs; Ok(diffs) with whether all are within.
fn check(
    model: &Model,
    on: &LosslessCheck,
    reference: &[Vec<Tensor>],
    names: &[String],
) -> Result<(bool, Vec<Vec<OutputDiff>>), VerifyError> {
    let tol = on.tolerance;
    let got = outputs(on.runtime, model, "optimized model", on.sets)?;
    let diffs: Vec<Vec<OutputDiff>> = reference
        .iter()
        .zip(&got)
        .map(|(r, g)| {
            r.iter()
                .zip(g)
                .zip(names)
                .map(|((a, b), n)| compare_output(n, a, b, tol))
                .collect()
        })
        .collect();
    let ok = diffs.iter().flatten().all(|d| d.ok)
        && got.iter().zip(reference).all(|(g, r)| g.len() == r.len());
    Ok((ok, diffs))
}

/// Optimizes `start` with `pipeline` and proves the result computes what `original`
/// computes on the check's sets (within its tolerance); `start` is `original` after exact
/// conversions (an opset upgrade), or `original` itself. On a mismatch: strict mode fails;
/// otherwise the first breaking rewrite is found by bisection over the rewrite sequence
/// (`--bisect-limit` runs), denied, and the pipeline runs again, until the result
/// verifies. `after` sees every pass of every run; the last run is the accepted one.
pub fn optimize_verified(
    original: &Model,
    start: &Model,
    pipeline: &Pipeline,
    base: &PassCx,
    check_on: LosslessCheck,
    after: &mut dyn FnMut(&str, &Model),
) -> Result<(Model, Vec<PassStat>, Verification), VerifyError> {
    let g = &original.graph;
    let names: Vec<String> = g
        .outputs()
        .iter()
        .map(|v| g.value(*v).name().to_string())
        .collect();
    let computed;
    let reference = match check_on.reference {
        Some(r) => r,
        None => {
            computed = reference_outputs(check_on.runtime, original, check_on.sets)?;
            &computed[..]
        }
    };
    let mut deny: Vec<(String, String)> = base.settings.deny.clone();
    let mut report = Verification::default();
    loop {
        let full = attempt(start, pipeline, base, &deny, base.remaining, &mut *after)?;
        report.runs += 1;
        let (ok, diffs) = check(&full.model, &check_on, reference, &names)?;
        if ok {
            report.diffs = diffs;
            report.log = full.log;
            report.regions = full.regions;
            return Ok((full.model, full.stats, report));
        }
        let worst = diffs
            .iter()
            .flatten()
            .find(|d| !d.ok)
            .map_or_else(String::new, |d| {
                format!(
                    "output '{}': max abs {:.3e}, cosine {:.6}",
                    d.name, d.max_abs, d.cosine
                )
            });
        if check_on.strict {
            return Err(VerifyError::Strict(worst));
        }
        if report.rolled_back.len() >= MAX_ROLLBACKS {
            return Err(VerifyError::TooMany(report.rolled_back.len()));
        }
        // The first 0 rewrites are fine and all of them break it: the least k whose
        // first k rewrites break it names the rewrite.
        let hi = whittle_passes::bisect::least_true(0, full.log.len(), |k| {
            let probe = attempt(start, pipeline, base, &deny, Some(k), &mut |_, _| {})?;
            report.runs += 1;
            Ok::<_, VerifyError>(!check(&probe.model, &check_on, reference, &names)?.0)
        })?;
        let Some((pass, rule, at)) = full.log.get(hi.saturating_sub(1)).cloned() else {
            return Err(VerifyError::Eval(format!(
                "the outputs differ ({worst}) but no rewrite was made"
            )));
        };
        tracing::warn!(
            "rewrite {hi} ({pass}/{rule} at '{at}') changes the outputs ({worst}); rolled back"
        );
        report
            .rolled_back
            .push((pass.to_string(), rule.to_string(), at.clone(), hi));
        deny.push((rule.to_string(), at));
    }
}
