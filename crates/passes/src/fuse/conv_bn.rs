//! `Conv`/`ConvTranspose → BatchNormalization` (inference mode) folds into the
//! convolution's weights.

use super::batchnorm::{BnParams, bn_params, f32_vec, inference_bn};
use crate::edit::{bypass, drop_if_unused};
use crate::guard::{constant, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{DataType, Graph, NodeId, Tensor};

/// y = BN(Conv(x, W, b)) becomes Conv(x, W', b') with W' = W·s, b' = (b − mean)·s + β,
/// s = γ / sqrt(var + ε), per output channel, computed in f64.
///
/// Guards: the Conv result feeds only the BN; W (and b) are f32 constants read by this
/// Conv alone; γ, β, mean, var are f32 constants of one value per output channel; the BN
/// is in inference mode and only its first output is used.
pub struct ConvBatchNorm;

impl Rule for ConvBatchNorm {
    fn name(&self) -> &'static str {
        "conv-batchnorm"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let (c, y) = inference_bn(g, n)?;
        let (conv_id, _) = g.value(c).producer()?;
        let conv = g.node(conv_id);
        let transposed = is_op(conv, "ConvTranspose");
        if !(is_op(conv, "Conv") || transposed) || !single_use(g, c) {
            return None;
        }
        let wv = conv.input(1)?;
        let w = constant(g, Some(wv))?;
        if w.dtype() != DataType::Float || g.value(wv).uses().len() != 1 || w.dims.is_empty() {
            return None;
        }
        // Output channel of each weight element: W is [M, C/g, k...] for Conv and
        // [C, M/g, k...] for ConvTranspose (channel gi·M/g + j for input channel c in
        // group gi = c / (C/g)).
        let groups = usize::try_from(conv.attr("group").and_then(|a| a.i).unwrap_or(1)).ok()?;
        let (d0, d1) = (
            usize::try_from(w.dims[0]).ok()?,
            usize::try_from(*w.dims.get(1)?).ok()?,
        );
        let m = if transposed { d1 * groups } else { d0 };
        if groups == 0 || (transposed && d0 % groups != 0) {
            return None;
        }
        let spatial: usize = w.dims[2..].iter().map(|d| *d as usize).product();
        let channel_of = move |i: usize| -> usize {
            if transposed {
                let (c, j) = (i / (d1 * spatial), (i / spatial) % d1);
                (c / (d0 / groups)) * d1 + j
            } else {
                i / (d1 * spatial)
            }
        };
        let bias = match conv.input(2) {
            Some(b) if g.value(b).uses().len() == 1 => f32_vec(g, Some(b), m)?,
            Some(_) => return None,
            None => vec![0.0; m],
        };
        let BnParams { s, mean, beta } = bn_params(g, n, m)?;
        let wdata = w.to_f32_vec().ok()?;
        let new_w: Vec<f32> = wdata
            .iter()
            .enumerate()
            .map(|(i, x)| (f64::from(*x) * s[channel_of(i)]) as f32)
            .collect();
        let new_b: Vec<f32> = (0..m)
            .map(|i| ((bias[i] - mean[i]) * s[i] + beta[i]) as f32)
            .collect();
        let w_dims = w.dims.clone();
        let w_name = g.value(wv).name().to_string();
        Some(Box::new(move |g: &mut Graph| {
            let nw = g.add_initializer(&w_name, Tensor::from_f32(w_dims, &new_w));
            let nb = g.add_initializer(
                &format!("{w_name}_bias"),
                Tensor::from_f32(vec![m as i64], &new_b),
            );
            let old_b = g.node(conv_id).input(2);
            g.set_input(conv_id, 1, Some(nw));
            g.set_input(conv_id, 2, Some(nb));
            drop_if_unused(g, wv);
            if let Some(b) = old_b {
                drop_if_unused(g, b);
            }
            bypass(g, n, y, c)
        }))
    }
}
