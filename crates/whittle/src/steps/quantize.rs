//! Quantization as a lossy step: the mode's passes, each run once; int8-static first
//! observes its activation ranges on calibration data, and a whole-model budget keeps
//! the costliest layers float until the model meets it.

use super::data::calibration_data;
use super::{ModelStep, StepData, int4_block, int8_form, nbits_level};
use crate::modes::{AccuracyLevel, BlockSize, Int8Dynamic, Int8Form, Quantize};
use crate::optimizer::Error;
use std::sync::Arc;
use whittle_compress::ErrorBudget;
use whittle_compress::quant::Int4Format;
use whittle_compress::quant::QuantError;
use whittle_compress::quant::budget::{self, Fitted};
use whittle_compress::quant::int4::Grams;
use whittle_compress::quant::qdq::{self, QuantizeStatic};
use whittle_compress::quant::ranges::{self, Method};
use whittle_compress::quant::{
    ActScale, DynamicInt8, Fp16Compute, Fp16Weights, QuantizeInt4, QuantizeWeights,
};
use whittle_eval::Judge;
use whittle_ir::Model;
use whittle_passes::{Pass, PassCx, PassError, PassStat, Pipeline};

/// `--quantize MODE [--budget cosine=X|top1=X]`.
pub(crate) struct QuantizeStep {
    pub(crate) mode: Quantize,
    pub(crate) budget: Option<ErrorBudget>,
}

impl ModelStep for QuantizeStep {
    fn name(&self) -> &'static str {
        "quantize"
    }

    fn pass_names(&self) -> Vec<&'static str> {
        let mut names = vec!["quantize"];
        if let Quantize::Int8Static(_) = self.mode {
            names.push("quantize-int8-static");
        } else if let Quantize::Int8Weights(o) = &self.mode
            && o.int8_form == Int8Form::Auto
        {
            names.extend(
                passes(&int8_form::as_form(o, Int8Form::Matmulnbits))
                    .iter()
                    .map(|p| p.name()),
            );
        } else {
            names.extend(passes(&self.mode).iter().map(|p| p.name()));
        }
        names
    }

    fn needs_data(&self) -> bool {
        let block_auto = matches!(&self.mode, Quantize::Int4(o) if o.block_size == BlockSize::Auto);
        self.budget.is_some() || self.level().is_some() || block_auto
    }

    fn run(
        &self,
        model: &mut Model,
        cx: &mut PassCx,
        data: &mut StepData,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<Vec<PassStat>, Error> {
        if let Quantize::Int4(o) = &self.mode
            && let Some(sizes) = int4_block::measured_sizes(o, data)
        {
            return int4_block::choose(self, o, &sizes, model, cx, data, after);
        }
        let Some(level) = self.level() else {
            return self.run_mode(model, cx, data, after);
        };
        if let Quantize::Int8Weights(o) = &self.mode
            && o.int8_form == Int8Form::Auto
        {
            return int8_form::choose(self, o, model, cx, data, after);
        }
        Ok(self.run_level(level, model, cx, data, after)?.0)
    }
}

impl QuantizeStep {
    /// The mode's quantization, then MatMulNBits' accuracy level (`level`): the stats and
    /// the kept level's measurement, when it was measured.
    pub(super) fn run_level(
        &self,
        level: AccuracyLevel,
        model: &mut Model,
        cx: &mut PassCx,
        data: &mut StepData,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<(Vec<PassStat>, Option<nbits_level::Trial>), Error> {
        let (before, float) = (nbits_level::nbits_names(model), model.clone());
        let stats = self.run_mode(model, cx, data, after)?;
        let nodes = nbits_level::new_nbits(model, &before);
        let (note, kept) = match level {
            AccuracyLevel::Level(l) => {
                nbits_level::set_level(model, &nodes, i64::from(l));
                let note = format!(
                    "{} accuracy_level {l} on {} MatMulNBits (as asked)",
                    self.label(),
                    nodes.len()
                );
                (note, None)
            }
            AccuracyLevel::Auto => {
                let c =
                    nbits_level::choose(self.label(), &float, model, &nodes, data, self.budget)?;
                (c.note, c.kept)
            }
        };
        tracing::info!("{note}");
        cx.journal.notes.push(("graph".into(), note));
        Ok((stats, kept))
    }

    /// The accuracy level asked for, when this step writes (or may write) MatMulNBits.
    fn level(&self) -> Option<AccuracyLevel> {
        match &self.mode {
            Quantize::Int4(o) if o.int4_format == Int4Format::MatMulNBits => Some(o.accuracy_level),
            Quantize::Int8Weights(o)
                if matches!(o.int8_form, Int8Form::Matmulnbits | Int8Form::Auto) =>
            {
                Some(o.accuracy_level)
            }
            _ => None,
        }
    }

    /// The quantization's name in notes about its MatMulNBits.
    fn label(&self) -> &'static str {
        match &self.mode {
            Quantize::Int8Weights(_) => "int8",
            _ => "int4",
        }
    }

    /// The mode's quantization, under the budget when there is one.
    pub(super) fn run_mode(
        &self,
        model: &mut Model,
        cx: &mut PassCx,
        data: &mut StepData,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<Vec<PassStat>, Error> {
        if let Quantize::Int8Dynamic(o) = &self.mode
            && o.act_scale == ActScale::Auto
        {
            return self.run_auto(o, model, cx, data, after);
        }
        let quantizer = self.quantizer(model, cx, data)?;
        let (Some(judge), Some(b), Some(sets)) = (&data.judge, self.budget, &data.sets) else {
            let stats = quantizer().run_observed(model, cx, after)?;
            after("quantize", model);
            return Ok(stats);
        };
        whittle_compress::budget::warn_unshowable(b, judge);
        let kept = match self.mode {
            Quantize::Int4(_) => &KEPT_INT8,
            _ => &KEPT_FLOAT,
        };
        let budget = Budgeted {
            judge,
            b,
            sets,
            kept,
        };
        keep_float_within(model, cx, &budget, &quantizer, after)
    }
}

/// What a budget search judges with.
struct Budgeted<'a> {
    judge: &'a Judge,
    b: ErrorBudget,
    sets: &'a whittle_compress::decompose::Data,
    /// What a kept site becomes: float, or int8 (int4's kept layers).
    kept: &'a Kept,
}

/// How the layers a budget keeps are treated.
struct Kept {
    /// The rule denied at a kept site (`*`: every rule, so the layer stays float).
    rule: &'static str,
    /// The pass that takes the kept sites instead, whose rewrites are not sites of the
    /// search.
    fallback: Option<&'static str>,
    wording: budget::Wording,
}

/// Kept layers stay float.
const KEPT_FLOAT: Kept = Kept {
    rule: "*",
    fallback: None,
    wording: budget::Wording::FLOAT,
};

/// int4's kept layers are stored int8 instead (Cast -> Mul, float compute): mixed
/// precision, each layer at 4 bits unless the budget needs 8 there.
const KEPT_INT8: Kept = Kept {
    rule: "int4",
    fallback: Some("quantize-int8-weights"),
    wording: budget::Wording {
        kept: "kept at int8",
        all: "at int4",
        doing: "int4 instead of int8",
        cost: "relative output error",
    },
};

/// Quantizes `model` with the fewest layers kept float that meet the budget, and reports
/// which and why.
fn keep_float_within(
    model: &mut Model,
    cx: &mut PassCx,
    budget: &Budgeted,
    quantizer: &dyn Fn() -> Pipeline,
    after: &mut dyn FnMut(&str, &Model),
) -> Result<Vec<PassStat>, Error> {
    let fitted = fit_budget(model, cx, (budget.judge, budget.b, budget.kept), quantizer)?;
    cx.settings.deny.extend(
        fitted
            .kept
            .iter()
            .map(|s| (budget.kept.rule.to_string(), s.clone())),
    );
    let stats = quantizer().run_observed(model, cx, after)?;
    cx.journal
        .notes
        .extend(fitted.notes_as(&budget.sets.source, &budget.kept.wording));
    after("quantize", model);
    Ok(stats)
}

impl QuantizeStep {
    /// `--act-scale auto`: the fewest layers scaled per row (the others per tensor, which
    /// ORT runs faster) that meet the budget. When even every layer per row misses it,
    /// this is `--act-scale row` under the budget: the costliest layers stay float.
    fn run_auto(
        &self,
        o: &Int8Dynamic,
        model: &mut Model,
        cx: &mut PassCx,
        data: &mut StepData,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<Vec<PassStat>, Error> {
        let (Some(judge), Some(b), Some(sets)) = (&data.judge, self.budget, &data.sets) else {
            return Err(Error::Config(AUTO_NEEDS_BUDGET.into()));
        };
        let with_rows = |rows: &[String]| {
            let o = Int8Dynamic {
                act_scale: ActScale::Auto,
                ..o.clone()
            };
            Pipeline::once(dynamic_passes(&o, rows.to_vec()))
        };
        let row = Quantize::Int8Dynamic(Int8Dynamic {
            act_scale: ActScale::Row,
            ..o.clone()
        });
        let all_rows = || Pipeline::once(passes(&row));
        let mut trial = model.clone();
        all_rows().run(&mut trial, &mut cx.fresh())?;
        if !b.holds(&judge.score(&trial).map_err(QuantError::from)?) {
            let budget = Budgeted {
                judge,
                b,
                sets,
                kept: &KEPT_FLOAT,
            };
            return keep_float_within(model, cx, &budget, &all_rows, after);
        }
        // Ranked by an estimate from one float probe run: a trial per layer would cost a
        // run of tract's integer kernels each.
        let facts = facts(model, cx)?;
        let costs =
            dynamic_pass(o, Vec::new()).row_costs(&sets.runtime, model, &facts, &sets.sets)?;
        let fitted = budget::fit_ranked(model, judge, b, costs, |m, rows| {
            let mut cx = cx.fresh();
            with_rows(rows).run(m, &mut cx)?;
            Ok(cx.journal.log.into_iter().map(|(_, _, s)| s).collect())
        })?;
        let stats = with_rows(&fitted.kept).run_observed(model, cx, after)?;
        cx.journal
            .notes
            .extend(fitted.notes_as(&sets.source, &PER_ROW));
        after("quantize", model);
        Ok(stats)
    }

    /// The mode's passes as a run-once pipeline, built afresh per run; int8-static
    /// observes its ranges on `model` first.
    fn quantizer(
        &self,
        model: &mut Model,
        cx: &PassCx,
        data: &StepData,
    ) -> Result<Box<dyn Fn() -> Pipeline>, Error> {
        Ok(match &self.mode {
            Quantize::Int8Static(o) => {
                let mut pass = calibrate_static(model, cx, data, o.min_elements, o.calibration)?;
                pass.per_channel = !o.per_tensor;
                pass.full_range = o.full_range;
                Box::new(move || Pipeline::once(vec![Box::new(pass.clone())]))
            }
            Quantize::Int4(o) if data.calibrate.is_some() => {
                let grams = Arc::new(gather_grams(model, cx, data, &int4_pass(o))?);
                let (o, mixed) = (o.clone(), self.budget.is_some());
                Box::new(move || {
                    let mut q = int4_pass(&o);
                    q.grams = grams.clone();
                    Pipeline::once(int4_passes(q, o.min_elements, mixed))
                })
            }
            Quantize::Int4(o) if self.budget.is_some() => {
                let o = o.clone();
                Box::new(move || Pipeline::once(int4_passes(int4_pass(&o), o.min_elements, true)))
            }
            other => {
                let q = other.clone();
                Box::new(move || Pipeline::once(passes(&q)))
            }
        })
    }
}

/// The int4 pass of settings `o` (round-to-nearest; GPTQ once given Gram matrices).
fn int4_pass(o: &crate::modes::Int4) -> QuantizeInt4 {
    QuantizeInt4 {
        block_size: match o.block_size {
            BlockSize::Rows(n) => n,
            BlockSize::Auto => BlockSize::UNMEASURED,
        } as usize,
        format: o.int4_format,
        min_elements: o.min_elements,
        ..QuantizeInt4::default()
    }
}

/// int4's passes: the int4 pass, then (`mixed`, under a budget) int8 weights for the
/// dense layers it was denied, then the embedding tables.
fn int4_passes(q: QuantizeInt4, min_elements: u64, mixed: bool) -> Vec<Box<dyn Pass>> {
    let mut out: Vec<Box<dyn Pass>> = vec![Box::new(q)];
    if mixed {
        out.push(Box::new(QuantizeWeights {
            min_elements,
            ops: &["MatMul", "Gemm"],
            cast: true,
            ..QuantizeWeights::default()
        }));
    }
    out.push(tables(min_elements));
    out
}

/// Embedding tables are not MatMuls: int4 and int8-dynamic store them as int8 rows.
fn tables(min_elements: u64) -> Box<dyn Pass> {
    Box::new(QuantizeWeights {
        min_elements,
        ops: &["Gather"],
        cast: false,
        ..QuantizeWeights::default()
    })
}

/// XᵀX of the inputs of every dense layer `pass` would quantize, over the calibration
/// sets (`--calibrate`), by weight name: what GPTQ rounds with.
fn gather_grams(
    model: &mut Model,
    cx: &PassCx,
    data: &StepData,
    pass: &QuantizeInt4,
) -> Result<Grams, Error> {
    let Some(path) = &data.calibrate else {
        return Ok(Grams::new());
    };
    let sets = calibration_data(path, model, (&data.runtime, data.holdout))?;
    let facts = facts(model, cx)?;
    Ok(pass.gather_grams(&sets.runtime, model, &facts, &sets.sets)?)
}

/// The passes of quantization mode `q` (all but int8-static, which calibrates first),
/// in the order they run.
pub(crate) fn passes(q: &Quantize) -> Vec<Box<dyn Pass>> {
    match q {
        Quantize::Int8Weights(o) => {
            let cast = Box::new(QuantizeWeights {
                per_channel: !o.per_tensor,
                min_elements: o.min_elements,
                cast: o.int8_form != Int8Form::Dq,
                ..QuantizeWeights::default()
            });
            match o.int8_form {
                // The dense layers MatMulNBits declines are cast, like every other op.
                Int8Form::Matmulnbits => vec![Box::new(int8_form::nbits_pass(o)), cast],
                Int8Form::Cast | Int8Form::Dq | Int8Form::Auto => vec![cast],
            }
        }
        Quantize::Fp16(_) => vec![Box::new(Fp16Compute)],
        Quantize::Int4(o) => vec![Box::new(int4_pass(o)), tables(o.min_elements)],
        Quantize::Fp16Weights(o) => vec![Box::new(Fp16Weights {
            min_elements: o.min_elements,
        })],
        Quantize::Int8Static(_) => Vec::new(),
        Quantize::Int8Dynamic(o) => dynamic_passes(o, Vec::new()),
    }
}

/// int8-dynamic's passes, with `row_sites` scaled per row under `--act-scale auto`.
fn dynamic_passes(o: &Int8Dynamic, row_sites: Vec<String>) -> Vec<Box<dyn Pass>> {
    vec![Box::new(dynamic_pass(o, row_sites)), tables(o.min_elements)]
}

/// The int8-dynamic pass of settings `o`.
fn dynamic_pass(o: &Int8Dynamic, row_sites: Vec<String>) -> DynamicInt8 {
    DynamicInt8 {
        min_elements: o.min_elements,
        full_range: o.full_range,
        ops: o.ops.iter().map(|op| op.op_type().to_string()).collect(),
        act_scale: o.act_scale,
        row_sites,
    }
}

/// The facts of `model` under the run's input shapes (what the data steps read sites by).
fn facts(model: &mut Model, cx: &PassCx) -> Result<whittle_ir::infer::Inference, Error> {
    let opts = whittle_ir::infer::InferOptions {
        input_shapes: cx.settings.input_shapes.clone(),
    };
    Ok(whittle_ir::infer::infer(model, &opts).map_err(PassError::from)?)
}

/// What `--act-scale auto` without a budget is told.
pub(crate) const AUTO_NEEDS_BUDGET: &str = "act-scale auto chooses the layers to scale per row by the budget: give --budget cosine=X or top1=X";

/// The report's words for `--act-scale auto`'s search.
const PER_ROW: budget::Wording = budget::Wording {
    kept: "scaled per row",
    all: "scaled per tensor",
    doing: "scaling per tensor",
    cost: "estimated relative activation error",
};

/// The fewest layers to keep (float, or as `kept` says) so that quantizing `model`
/// meets `b`.
fn fit_budget(
    model: &Model,
    base: &PassCx,
    (judge, b, kept): (&Judge, ErrorBudget, &Kept),
    quantizer: &dyn Fn() -> Pipeline,
) -> Result<Fitted, Error> {
    let fitted = budget::fit(model, judge, b, |m, excluded| {
        let mut cx = base.fresh();
        cx.settings
            .deny
            .extend(excluded.iter().map(|s| (kept.rule.to_string(), s.clone())));
        quantizer().run(m, &mut cx)?;
        Ok(cx
            .journal
            .log
            .into_iter()
            .filter(|(pass, _, _)| Some(*pass) != kept.fallback)
            .map(|(_, _, site)| site)
            .collect())
    })?;
    Ok(fitted)
}

/// int8-static: observes the ranges of the values it will quantize on the calibration
/// data and returns the pass that quantizes with them.
fn calibrate_static(
    model: &mut Model,
    cx: &PassCx,
    data: &StepData,
    min_elements: u64,
    method: Method,
) -> Result<QuantizeStatic, Error> {
    let Some(path) = &data.calibrate else {
        return Err(Error::Config(
            "int8-static needs calibration data (--calibrate PATH)".into(),
        ));
    };
    let sets = calibration_data(path, model, (&data.runtime, data.holdout))?;
    let facts = facts(model, cx)?;
    let sites = qdq::sites(&model.graph, &facts, min_elements).map_err(|source| PassError::Ir {
        pass: "quantize-int8-static",
        source,
    })?;
    let values = qdq::observed_values(&sites);
    let seen = ranges::observe(&sets.runtime, model, &values, &sets.sets, method)?;
    let ranges = values
        .iter()
        .zip(seen)
        .map(|(v, r)| (model.graph.value(*v).name().to_string(), r))
        .collect();
    Ok(QuantizeStatic {
        ranges,
        per_channel: true,
        min_elements,
        full_range: false,
    })
}
