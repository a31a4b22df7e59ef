//! Timing one layer alone in tract, for `--measure` (decomposition and pruning keep a
//! rewrite only when the layer also runs faster). Fewer MACs do not always mean less
//! time: depthwise convs are memory-bound, and odd channel counts lose vector widths.
//!
//! A layer is timed as a one-node model (the node, its constant inputs, a fresh
//! activation input of the shape the data gave it), median of repeated runs after
//! warm-up.

use std::time::Instant;
use whittle_eval::{EvalError, Runner, Runtime};
use whittle_ir::{DataType, Dim, Graph, IrError, Model, NodeId, Tensor, Type};

const WARMUP: usize = 3;
const RUNS: usize = 21;

/// A model holding only `node` of `model`, its constant inputs, and a fresh activation
/// input of `dims` (the node's input 0).
pub fn one_layer(model: &Model, node: NodeId, dims: &[i64]) -> Result<Model, IrError> {
    let src = &model.graph;
    let node = src.node(node).clone();
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

/// An input of `dims` with varied values (timing does not depend on them).
pub fn filled(dims: &[i64]) -> Vec<Tensor> {
    let n: i64 = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) / 48.0).collect();
    vec![Tensor::from_f32(dims.to_vec(), &values)]
}

/// Median milliseconds of `model` on `input` in `rt`.
pub fn median_ms(
    rt: &Runtime,
    model: &Model,
    input: &[Tensor],
    label: &str,
) -> Result<f64, EvalError> {
    let r = Runner::new(rt, model, label, input)?;
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

/// Median milliseconds of `node` of `model` alone on an input of `dims`.
pub fn layer_ms(
    rt: &Runtime,
    model: &Model,
    node: NodeId,
    dims: &[i64],
    label: &str,
) -> Result<f64, EvalError> {
    let single = one_layer(model, node, dims).map_err(|e| EvalError::Load {
        runtime: "tract",
        model: label.to_string(),
        reason: e.to_string(),
    })?;
    median_ms(rt, &single, &filled(dims), label)
}
