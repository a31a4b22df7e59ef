//! MatMulNBits' `accuracy_level` for `--quantize int4 --int4-format matmulnbits` (and
//! int8-weights written as 8-bit MatMulNBits): the
//! precision ONNX Runtime computes in (0: unset, its fp32 path; 4: int8 activations in
//! its integer kernels, several times faster for memory-bound decoding but with a second
//! rounding). `--accuracy-level N` sets it; `auto` (the default) measures: in ONNX
//! Runtime, level 0 and level 4 are each timed and judged on the held-out data, and level
//! 4 is kept when it is faster and its error stays within the budget (without a budget:
//! within twice level 0's own error). tract does not read the attribute, so with tract as
//! the runtime `auto` leaves it unset and says so.

use super::StepData;
use crate::optimizer::Error;
use whittle_compress::ErrorBudget;
use whittle_compress::timing::median_ms;
use whittle_eval::{Judge, Runtime};
use whittle_ir::{Attribute, Model, NodeId};

/// The level `auto` tries against level 0.
const FAST_LEVEL: i64 = 4;

/// A faster level must take at most this share of level 0's time.
const FASTER: f64 = 0.95;

/// The MatMulNBits nodes of `model` that `before` did not have (whittle's own).
pub(crate) fn new_nbits(model: &Model, before: &[String]) -> Vec<NodeId> {
    let g = &model.graph;
    g.node_ids()
        .filter(|n| {
            let node = g.node(*n);
            node.op() == "MatMulNBits" && !before.iter().any(|b| b == node.name())
        })
        .collect()
}

/// The names of the MatMulNBits nodes of `model`.
pub(crate) fn nbits_names(model: &Model) -> Vec<String> {
    let g = &model.graph;
    g.node_ids()
        .filter(|n| g.node(*n).op() == "MatMulNBits")
        .map(|n| g.node(n).name().to_string())
        .collect()
}

/// Sets `accuracy_level` on `nodes`.
pub(crate) fn set_level(model: &mut Model, nodes: &[NodeId], level: i64) {
    for n in nodes {
        let attrs = &mut model.graph.node_mut(*n).attributes;
        attrs.retain(|a| a.name() != "accuracy_level");
        attrs.push(Attribute::int("accuracy_level", level));
    }
}

/// One level's measurement.
#[derive(Clone, Copy)]
pub(crate) struct Trial {
    pub(crate) ms: f64,
    /// 1 − mean cosine to the float model on the judged sets.
    pub(crate) loss: f64,
    pub(crate) held: bool,
}

/// The level chosen, what it measured, and the note saying so.
pub(crate) struct Choice {
    pub(crate) note: String,
    /// The measurement of the level kept (None when nothing was measured).
    pub(crate) kept: Option<Trial>,
}

/// True when `choose` can measure in `data`: ONNX Runtime, with data to run.
pub(crate) fn measurable(data: &StepData) -> bool {
    matches!(data.runtime, Runtime::Ort { .. })
        && data.sets.as_ref().is_some_and(|d| !d.sets.is_empty())
}

/// Chooses the level for `nodes` of `model` (quantized from `float`) by measuring in
/// `data`'s runtime, sets it, and returns what was measured.
/// `label` names the quantization in the note (int4, int8).
pub(crate) fn choose(
    label: &str,
    float: &Model,
    model: &mut Model,
    nodes: &[NodeId],
    data: &StepData,
    budget: Option<ErrorBudget>,
) -> Result<Choice, Error> {
    let rt = &data.runtime;
    let unmeasured = |why: &str| Choice {
        note: format!("{label} accuracy_level left unset (0): {why}"),
        kept: None,
    };
    if !matches!(rt, Runtime::Ort { .. }) {
        return Ok(unmeasured(
            "it is measured only in ONNX Runtime (--runtime ort or auto), and tract does \
             not read it",
        ));
    }
    let Some((sets, first)) = data.sets.as_ref().and_then(|d| Some((d, d.sets.first()?))) else {
        return Ok(unmeasured("no data to measure on"));
    };
    let trials = Trials::new(float, data, sets, first, budget)?;
    let mut fast = model.clone();
    set_level(&mut fast, nodes, FAST_LEVEL);
    let trial = |m: &Model| trials.trial(m);
    let (zero, four) = (trial(model)?, trial(&fast)?);
    let within = match budget {
        Some(_) => four.held,
        None => four.loss <= 2.0 * zero.loss.max(1e-7),
    };
    let take = within && four.ms <= FASTER * zero.ms;
    let level = if take { FAST_LEVEL } else { 0 };
    if take {
        *model = fast;
    }
    let note = level_note(label, level, nodes.len(), rt.name(), (&zero, &four));
    Ok(Choice {
        note,
        kept: Some(if take { four } else { zero }),
    })
}

/// Times and judges candidates in `data`'s runtime.
struct Trials<'a> {
    /// The budget's judge, or one made here.
    shared: Option<&'a Judge>,
    own: Option<Judge>,
    rt: &'a Runtime,
    first: &'a [whittle_ir::Tensor],
    budget: Option<ErrorBudget>,
}

fn eval_error(e: whittle_eval::EvalError) -> Error {
    Error::BudgetMissed(format!("MatMulNBits trial: {e}"))
}

impl<'a> Trials<'a> {
    /// The budget's judge when there is one (its reference is the model before any lossy
    /// step, what the budget is held against); else one on `float`.
    fn new(
        float: &Model,
        data: &'a StepData,
        sets: &'a whittle_compress::decompose::Data,
        first: &'a [whittle_ir::Tensor],
        budget: Option<ErrorBudget>,
    ) -> Result<Trials<'a>, Error> {
        let rt = &data.runtime;
        let own = match &data.judge {
            Some(_) => None,
            None => Some(Judge::new(rt, float, sets.judged()).map_err(eval_error)?),
        };
        Ok(Trials {
            shared: data.judge.as_ref(),
            own,
            rt,
            first,
            budget,
        })
    }

    /// Judges `m` and times it as a decode step runs: one sample (the first of the
    /// first set), else the whole set when the model takes no batch of one.
    fn trial(&self, m: &Model) -> Result<Trial, Error> {
        let judge = self.shared.or(self.own.as_ref());
        let Some(judge) = judge else {
            return Err(Error::BudgetMissed("MatMulNBits trial: no judge".into()));
        };
        let score = judge.score(m).map_err(eval_error)?;
        let held = self.budget.is_none_or(|b| b.holds(&score));
        let label = "MatMulNBits trial";
        let ms = median_ms(self.rt, m, &first_sample(self.first), label)
            .or_else(|_| median_ms(self.rt, m, self.first, label))
            .map_err(eval_error)?;
        Ok(Trial {
            ms,
            loss: 1.0 - score.cosine,
            held,
        })
    }
}

/// Measures `model` (quantized from `float`) in `data`'s runtime, when it can be.
pub(crate) fn measure(
    float: &Model,
    model: &Model,
    data: &StepData,
    budget: Option<ErrorBudget>,
) -> Result<Option<Trial>, Error> {
    let Some((sets, first)) = data.sets.as_ref().and_then(|d| Some((d, d.sets.first()?))) else {
        return Ok(None);
    };
    if !measurable(data) {
        return Ok(None);
    }
    Trials::new(float, data, sets, first, budget)?
        .trial(model)
        .map(Some)
}

/// What the level trials measured, for the report.
fn level_note(
    label: &str,
    level: i64,
    nodes: usize,
    runtime: &str,
    (zero, four): (&Trial, &Trial),
) -> String {
    let missed = |t: &Trial| if t.held { "" } else { " (misses the budget)" };
    format!(
        "{label} accuracy_level {level} on {nodes} MatMulNBits, measured in {runtime}: level 0 \
         {:.2} ms, 1-cosine {:.2e}{}; level {FAST_LEVEL} {:.2} ms, 1-cosine {:.2e}{}",
        zero.ms,
        zero.loss,
        missed(zero),
        four.ms,
        four.loss,
        missed(four),
    )
}

/// The first sample of `set`: each input cut to its first row along axis 0.
pub(crate) fn first_sample(set: &[whittle_ir::Tensor]) -> Vec<whittle_ir::Tensor> {
    set.iter()
        .map(|t| {
            let rows = t.dims.first().copied().unwrap_or(1);
            let Ok(bytes) = t.le_bytes() else {
                return t.clone();
            };
            if rows <= 1 || bytes.len() % rows as usize != 0 {
                return t.clone();
            }
            let mut dims = t.dims.clone();
            dims[0] = 1;
            let one = bytes.slice(..bytes.len() / rows as usize);
            let mut out = whittle_ir::Tensor::from_raw(t.dtype(), dims, one);
            out.name = t.name.clone();
            out
        })
        .collect()
}
