//! `--measure` for pruning: a chosen size is kept only if the group's layers — its
//! producers and its consumer, each timed alone in tract ([`crate::timing`]) — run
//! faster together than before. A smaller dense layer is nearly always faster; the
//! exceptions are sizes that leave runtimes an awkward width, and layers so small that
//! a call costs more than the arithmetic.

use super::run::apply;
use super::{PruneError, Site};
use crate::allocate::Choices;
use crate::decompose::layer::{Layer, Shape};
use crate::decompose::stats::LayerStats;
use crate::timing::layer_ms;
use whittle_ir::Model;

const LABEL: &str = "prune (timing)";

/// tract milliseconds of a group's layers (before, after), when they were timed.
pub(super) type Latency = Option<(f64, f64)>;

/// Times each chosen group before and after; drops the choices that are not faster and
/// says so in `why`. Returns the milliseconds (before, after) per group that was timed.
pub(super) fn keep_faster(
    rt: &whittle_eval::Runtime,
    model: &Model,
    (layers, stats): (&[Layer], &[LayerStats]),
    sites: &[Site],
    choices: &mut Choices,
    why: &mut [String],
) -> Result<Vec<Latency>, PruneError> {
    let mut latency = vec![None; sites.len()];
    for (i, s) in sites.iter().enumerate() {
        let Some(j) = choices[i] else { continue };
        let kept = s.candidates[j].refit.kept.len();
        let alone: Choices = (0..sites.len()).map(|x| (x == i).then_some(j)).collect();
        let pruned = apply(model, layers, sites, &alone)?;
        let (mut before, mut after) = (0.0, 0.0);
        let readers: Vec<(usize, usize)> = s.group.consumers().collect();
        let layers_of = s.group.producers().chain(readers.iter().map(|r| r.0));
        for l in layers_of {
            let Some(dims) = stats.get(l).map(|s| &s.dims).filter(|d| !d.is_empty()) else {
                continue;
            };
            let mut cut = dims.clone();
            if let Some((_, span)) = readers.iter().find(|r| r.0 == l) {
                // A Conv reads kept channels (span counts its taps); a dense layer
                // kept × span features.
                let (axis, width) = match layers[l].shape {
                    Shape::Conv(_) => (1, kept),
                    Shape::Dense(_) => (cut.len() - 1, kept * span),
                };
                cut[axis] = width as i64;
            }
            before += layer_ms(rt, model, layers[l].node, dims, LABEL)?;
            after += layer_ms(rt, &pruned, layers[l].node, &cut, LABEL)?;
        }
        latency[i] = Some((before, after));
        if after >= before {
            choices[i] = None;
            why[i] = format!(
                "{kept}/{} cuts MACs but not {} time ({before:.3} -> {after:.3} ms)",
                s.group.channels,
                rt.name()
            );
        }
    }
    Ok(latency)
}
