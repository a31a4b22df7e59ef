//! int8-weights' form, `--int8-form auto` (the default). The cast form keeps float
//! compute: runtimes fold `Cast → Mul` into the float weight at load, so the file is
//! smaller and nothing else changes. 8-bit MatMulNBits keeps the weights int8 in memory
//! and, at accuracy level 4, multiplies in int8: where reading weights is the cost (a
//! decoder's one-token step) it runs much faster, elsewhere it may be slower and it
//! rounds the activations too. So in ONNX Runtime with data to run, both forms are
//! quantized, timed and judged on the held-out data, and MatMulNBits is kept when it
//! takes at most [`FASTER`] of the cast form's time and stays within the budget (without
//! a budget: within twice the cast form's error). Anywhere else `auto` is the cast form.
//!
//! MatMulNBits is tried at accuracy level 4 unless a level was given: at level 0 ONNX
//! Runtime expands the int8 weights to float on every run, which the cast form does once
//! at load, so level 0 cannot be the faster form (on the ~1 GB decoder it runs 10x
//! slower than cast).

use super::quantize::QuantizeStep;
use super::{StepData, nbits_level};
use crate::modes::{AccuracyLevel, Int8Form, Int8Weights, Quantize};
use crate::optimizer::Error;
use whittle_compress::quant::{Int4Format, QuantizeInt4};
use whittle_ir::Model;
use whittle_passes::{PassCx, PassStat};

/// MatMulNBits must take at most this share of the cast form's time.
const FASTER: f64 = 0.95;

/// The level MatMulNBits is tried at when none was given.
const TRIED_LEVEL: u8 = 4;

/// The 8-bit MatMulNBits pass of settings `o` (round to nearest).
pub(crate) fn nbits_pass(o: &Int8Weights) -> QuantizeInt4 {
    QuantizeInt4 {
        bits: 8,
        block_size: Int8Form::NBITS_BLOCK as usize,
        format: Int4Format::MatMulNBits,
        min_elements: o.min_elements,
        ..QuantizeInt4::default()
    }
}

/// The mode `o` with its form set to `form`.
pub(crate) fn as_form(o: &Int8Weights, form: Int8Form) -> Quantize {
    Quantize::Int8Weights(Int8Weights {
        int8_form: form,
        ..o.clone()
    })
}

/// One form's result.
struct Tried {
    model: Model,
    cx: PassCx,
    stats: Vec<PassStat>,
    trial: nbits_level::Trial,
}

/// Quantizes `model` in the form `auto` chooses (see the module doc) and notes what
/// each form measured.
pub(crate) fn choose(
    step: &QuantizeStep,
    o: &Int8Weights,
    model: &mut Model,
    cx: &mut PassCx,
    data: &mut StepData,
    after: &mut dyn FnMut(&str, &Model),
) -> Result<Vec<PassStat>, Error> {
    let in_form = |form| QuantizeStep {
        mode: as_form(o, form),
        budget: step.budget,
    };
    if !nbits_level::measurable(data) {
        return in_form(Int8Form::Cast).run_mode(model, cx, data, after);
    }
    let level = match o.accuracy_level {
        AccuracyLevel::Auto => TRIED_LEVEL,
        AccuracyLevel::Level(given) => given,
    };
    let mut tried = Vec::new();
    for form in [Int8Form::Cast, Int8Form::Matmulnbits] {
        let (mut m, mut c) = (model.clone(), cx.clone());
        let before = nbits_level::nbits_names(&m);
        let stats = in_form(form).run_mode(&mut m, &mut c, data, after)?;
        let nodes = nbits_level::new_nbits(&m, &before);
        nbits_level::set_level(&mut m, &nodes, i64::from(level));
        let trial = nbits_level::measure(model, &m, data, step.budget)?.ok_or_else(|| {
            Error::BudgetMissed("int8-form auto: a form could not be measured".into())
        })?;
        tried.push(Tried {
            model: m,
            cx: c,
            stats,
            trial,
        });
    }
    let (cast, nbits) = (&tried[0].trial, &tried[1].trial);
    let within = match step.budget {
        Some(_) => nbits.held,
        None => nbits.loss <= 2.0 * cast.loss.max(1e-7),
    };
    let take = within && nbits.ms <= FASTER * cast.ms;
    let note = form_note(take, data.runtime.name(), level, (cast, nbits));
    let kept = tried.swap_remove(usize::from(take));
    (*model, *cx) = (kept.model, kept.cx);
    tracing::info!("{note}");
    cx.journal.notes.push(("graph".into(), note));
    Ok(kept.stats)
}

/// What each form measured, for the report.
fn form_note(
    took: bool,
    runtime: &str,
    level: u8,
    (cast, nbits): (&nbits_level::Trial, &nbits_level::Trial),
) -> String {
    let missed = |t: &nbits_level::Trial| if t.held { "" } else { ", misses the budget" };
    format!(
        "int8 form {} (auto), measured in {runtime}: cast {:.2} ms (1-cosine {:.2e}{}), \
         matmulnbits at accuracy level {level} {:.2} ms (1-cosine {:.2e}{})",
        if took { "matmulnbits" } else { "cast" },
        cast.ms,
        cast.loss,
        missed(cast),
        nbits.ms,
        nbits.loss,
        missed(nbits),
    )
}
