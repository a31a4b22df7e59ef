//! What the BatchNormalization fusions share: the inference-mode guard and the folded
//! per-channel parameters.

use crate::guard::{constant, is_op};
use whittle_ir::{DataType, Graph, NodeId, ValueId};

/// The parameters of BN(z) = s·(z − mean) + β, per channel, in f64.
pub struct BnParams {
    /// γ / sqrt(var + ε).
    pub s: Vec<f64>,
    pub mean: Vec<f64>,
    pub beta: Vec<f64>,
}

/// Reads an f32 constant of exactly `len` elements as f64.
pub fn f32_vec(g: &Graph, v: Option<ValueId>, len: usize) -> Option<Vec<f64>> {
    let t = constant(g, v)?;
    if t.dtype() != DataType::Float {
        return None;
    }
    let x = t.to_f32_vec().ok()?;
    (x.len() == len).then(|| x.into_iter().map(f64::from).collect())
}

/// (input, output) of node `n` when it is a BatchNormalization in inference mode whose
/// outputs other than the first are unused.
pub fn inference_bn(g: &Graph, n: NodeId) -> Option<(ValueId, ValueId)> {
    let bn = g.node(n);
    if !is_op(bn, "BatchNormalization") || bn.attr("training_mode").is_some_and(|a| a.i == Some(1))
    {
        return None;
    }
    let extra_used = bn
        .outputs()
        .iter()
        .skip(1)
        .flatten()
        .any(|v| !g.value(*v).uses().is_empty() || g.is_output(*v));
    if extra_used {
        return None;
    }
    Some((bn.input(0)?, bn.output(0)?))
}

/// The BN's constant parameters over `m` channels (all f32 constants, else None).
pub fn bn_params(g: &Graph, n: NodeId, m: usize) -> Option<BnParams> {
    let bn = g.node(n);
    let eps = f64::from(bn.attr("epsilon").and_then(|a| a.f).unwrap_or(1e-5));
    let gamma = f32_vec(g, bn.input(1), m)?;
    let beta = f32_vec(g, bn.input(2), m)?;
    let mean = f32_vec(g, bn.input(3), m)?;
    let var = f32_vec(g, bn.input(4), m)?;
    let s = (0..m).map(|i| gamma[i] / (var[i] + eps).sqrt()).collect();
    Some(BnParams { s, mean, beta })
}
