//! `--measure`: a chosen rewrite is kept only if the layer also runs faster in the
//! runtime (`--runtime`: tract or ONNX Runtime).
//! Fewer MACs do not always mean less time: depthwise convs with several outputs per
//! channel are memory-bound and often slower on CPUs.
//!
//! Each layer is timed alone ([`crate::timing`]): a one-layer model (the original node,
//! or its rewrite) on an input of the shape the data gave it.

use super::search::{Outcome, emit};
use super::stats::LayerStats;
use super::{DecomposeError, Site};
use crate::timing::{filled, median_ms, one_layer};
use whittle_ir::{Graph, Model};

const LABEL: &str = "decompose (timing)";

/// Times each chosen rewrite against its original; drops those that are not faster.
pub fn keep_faster(
    rt: &whittle_eval::Runtime,
    model: &Model,
    sites: &[Site],
    stats: &[LayerStats],
    outcome: &mut Outcome,
) -> Result<(), DecomposeError> {
    for (i, site) in sites.iter().enumerate() {
        let Some(choice) = outcome.choices[i] else {
            continue;
        };
        let Some(dims) = stats
            .get(i)
            .map(|s| s.dims.clone())
            .filter(|d| !d.is_empty())
        else {
            continue;
        };
        let single = one_layer(model, site.layer.node, &dims)?;
        let mut rewritten = single.clone();
        let Some(moved) = moved(site, &single.graph) else {
            continue;
        };
        emit(&mut rewritten.graph, &moved, choice)?;
        let input = filled(&dims);
        let before = median_ms(rt, &single, &input, LABEL)?;
        let after = median_ms(rt, &rewritten, &input, LABEL)?;
        outcome.latency[i] = Some((before, after));
        if after >= before {
            outcome.choices[i] = None;
            outcome.why[i] = format!(
                "rank {} cuts MACs but not {} time ({before:.3} -> {after:.3} ms)",
                choice.rank,
                rt.name()
            );
        }
    }
    Ok(())
}

/// The site as it sits in the one-layer graph `g` (same factors, new ids).
fn moved(site: &Site, g: &Graph) -> Option<Site> {
    let node = g.node_ids().next()?;
    let mut layer = site.layer.clone();
    layer.node = node;
    layer.x = g.node(node).input(0)?;
    layer.w = g.node(node).input(1)?;
    Some(Site {
        layer,
        prepared: site.prepared.clone(),
        choices: site.choices.clone(),
    })
}
