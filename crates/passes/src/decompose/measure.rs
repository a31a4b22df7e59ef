//! `--measure`: a chosen rewrite is kept only if the layer also runs faster in tract.
//! Fewer MACs do not always mean less time: depthwise convs with several outputs per
//! channel are memory-bound and often slower on CPUs.
//!
//! Each layer is timed alone: a one-layer model (the original node, or its rewrite) on
//! an input of the shape the data gave it, median of repeated runs after warm-up.

use super::search::{Outcome, emit};
use super::stats::LayerStats;
use super::{DecomposeError, Site};
use std::time::Instant;
use whittle_eval::Runner;
use whittle_ir::{DataType, Dim, Graph, Model, Tensor, Type};

const WARMUP: usize = 3;
const RUNS: usize = 21;

/// Times each chosen rewrite against its original; drops those that are not faster.
pub fn keep_faster(
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
        let single = one_layer(model, site, &dims)?;
        let mut rewritten = single.clone();
        let Some(moved) = moved(site, &single.graph) else {
            continue;
        };
        emit(&mut rewritten.graph, &moved, choice)?;
        let input = filled(&dims);
        let before = median_ms(&single, &input)?;
        let after = median_ms(&rewritten, &input)?;
        outcome.latency[i] = Some((before, after));
        if after >= before {
            outcome.choices[i] = None;
            outcome.why[i] = format!(
                "rank {} cuts MACs but not tract time ({before:.3} -> {after:.3} ms)",
                choice.rank
            );
        }
    }
    Ok(())
}

/// A model holding only the site's node, its constant inputs, and a fresh activation
/// input of `dims`.
fn one_layer(model: &Model, site: &Site, dims: &[i64]) -> Result<Model, DecomposeError> {
    let src = &model.graph;
    let node = src.node(site.layer.node).clone();
    let mut g = Graph::new();
    let mut inputs = Vec::new();
    for (k, v) in node.inputs().iter().enumerate() {
        let Some(v) = v else {
            inputs.push(None);
            continue;
        };
        let name = src.value(*v).name().to_string();
        let nv = g.intern(&name);
        if k == 0 {
            g.value_mut(nv).info.ty = Some(Type::tensor(
                DataType::Float,
                dims.iter().map(|d| Dim::Known(*d)),
            ));
            g.push_input(nv);
        } else if let Some(t) = src.constant(*v) {
            g.set_initializer(nv, t.clone());
        }
        inputs.push(Some(nv));
    }
    let outputs: Vec<_> = node
        .outputs()
        .iter()
        .map(|v| v.map(|v| g.intern(src.value(v).name())))
        .collect();
    g.add_node(node.clone(), inputs, outputs.clone())?;
    for v in outputs.into_iter().flatten() {
        g.push_output(v);
    }
    let mut m = model.clone();
    m.graph = g;
    Ok(m)
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

/// An input of `dims` with varied values (timing does not depend on them).
fn filled(dims: &[i64]) -> Vec<Tensor> {
    let n: i64 = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) / 48.0).collect();
    vec![Tensor::from_f32(dims.to_vec(), &values)]
}

fn median_ms(model: &Model, input: &[Tensor]) -> Result<f64, DecomposeError> {
    let r = Runner::new(model, "decompose (timing)", input)?;
    for _ in 0..WARMUP {
        r.run(input)?;
    }
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            r.run(input).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[RUNS / 2])
}
