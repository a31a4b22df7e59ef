//! int4's block size, `--block-size auto` (the default): rows of K per scale trade
//! accuracy (smaller blocks follow the weights more closely) against speed and size
//! (larger blocks read fewer scales). In ONNX Runtime with data to run, each of
//! [`BlockSize::MEASURED`] is quantized (as MatMulNBits with its own accuracy level
//! chosen, `nbits_level`; or as blocked DequantizeLinear, which ONNX Runtime fuses into
//! MatMulNBits itself), timed and judged on the held-out data, and the fastest is kept
//! that stays within the budget (without a budget: within twice the first size's error),
//! when it is measurably faster than the first. Anywhere else `auto` is 32.

use super::quantize::QuantizeStep;
use super::{StepData, nbits_level};
use crate::modes::{BlockSize, Int4, Quantize};
use crate::optimizer::Error;
use whittle_compress::quant::Int4Format;
use whittle_ir::Model;
use whittle_passes::{PassCx, PassStat};

/// A larger block must take at most this share of the first size's time.
const FASTER: f64 = 0.95;

/// The sizes to measure for `o`, or None when `auto` is not measured here (a size was
/// given, or there is no ONNX Runtime or data).
pub(crate) fn measured_sizes(o: &Int4, data: &StepData) -> Option<Vec<u64>> {
    (o.block_size == BlockSize::Auto && nbits_level::measurable(data))
        .then(|| BlockSize::MEASURED.to_vec())
}

/// One size's result.
struct Tried {
    size: u64,
    model: Model,
    cx: PassCx,
    stats: Vec<PassStat>,
    trial: nbits_level::Trial,
}

/// Quantizes `model` at each of `sizes`, keeps the fastest within the budget (see the
/// module doc), and notes what each size measured.
pub(crate) fn choose(
    step: &QuantizeStep,
    o: &Int4,
    sizes: &[u64],
    model: &mut Model,
    cx: &mut PassCx,
    data: &mut StepData,
    after: &mut dyn FnMut(&str, &Model),
) -> Result<Vec<PassStat>, Error> {
    let mut tried = Vec::new();
    for &size in sizes {
        let sized = QuantizeStep {
            mode: Quantize::Int4(Int4 {
                block_size: BlockSize::Rows(size),
                ..o.clone()
            }),
            budget: step.budget,
        };
        let (mut m, mut c) = (model.clone(), cx.clone());
        let (stats, trial) = match o.int4_format {
            Int4Format::MatMulNBits => {
                sized.run_level(o.accuracy_level, &mut m, &mut c, data, after)?
            }
            Int4Format::DequantizeLinear => (sized.run_mode(&mut m, &mut c, data, after)?, None),
        };
        // A level given by hand, and the DequantizeLinear form, are not measured yet:
        // time them the same way.
        let trial = match trial {
            Some(t) => Some(t),
            None => nbits_level::measure(model, &m, data, step.budget)?,
        };
        let Some(trial) = trial else {
            return Err(Error::BudgetMissed(format!(
                "block-size auto: block size {size} could not be measured"
            )));
        };
        tried.push(Tried {
            size,
            model: m,
            cx: c,
            stats,
            trial,
        });
    }
    let pick = pick(&tried, step.budget.is_some());
    let note = block_note(&tried, pick, data.runtime.name());
    let kept = tried.swap_remove(pick);
    (*model, *cx) = (kept.model, kept.cx);
    tracing::info!("{note}");
    cx.journal.notes.push(("graph".into(), note));
    Ok(kept.stats)
}

/// The index of the size to keep: the fastest acceptable one when it beats the first
/// by [`FASTER`], else the first.
fn pick(tried: &[Tried], budgeted: bool) -> usize {
    let first = &tried[0].trial;
    let acceptable = |t: &nbits_level::Trial| {
        if budgeted {
            t.held
        } else {
            t.loss <= 2.0 * first.loss.max(1e-7)
        }
    };
    let best = (1..tried.len())
        .filter(|i| acceptable(&tried[*i].trial))
        .min_by(|a, b| tried[*a].trial.ms.total_cmp(&tried[*b].trial.ms));
    match best {
        Some(i) if tried[i].trial.ms <= FASTER * first.ms => i,
        _ => 0,
    }
}

/// What each size measured, for the report.
fn block_note(tried: &[Tried], pick: usize, runtime: &str) -> String {
    let each: Vec<String> = tried
        .iter()
        .map(|t| {
            let missed = if t.trial.held {
                ""
            } else {
                ", misses the budget"
            };
            format!(
                "{} rows {:.2} ms (1-cosine {:.2e}{missed})",
                t.size, t.trial.ms, t.trial.loss
            )
        })
        .collect();
    format!(
        "int4 block size {} (auto), measured in {runtime}: {}",
        tried[pick].size,
        each.join(", ")
    )
}
