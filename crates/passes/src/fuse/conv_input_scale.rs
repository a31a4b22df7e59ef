//! A scalar `Mul` feeding a `Conv` folds into its weights.

use crate::edit::drop_if_unused;
use crate::guard::{constant, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{DataType, Graph, NodeId, Tensor};

/// Conv(Mul(x, s), W, b) → Conv(x, W·s, b) for a one-element constant s: a convolution is
/// linear in its input, and zero padding stays zero. (GELU written out ends in `· 0.5`,
/// hard-swish in `/ 6` as `· 0.1667`, right before the next Conv in many exports.)
///
/// Guards: the Mul result is read by this Conv alone (as its input) and is not an
/// output; s is an f32 constant of one element; W is an f32 constant read by this Conv
/// alone; where `Gelu` exists (opset ≥ 20) a `· 0.5` after another Mul is left to the
/// GELU fusion, which removes more.
pub struct ConvInputScale;

impl Rule for ConvInputScale {
    fn name(&self) -> &'static str {
        "conv-input-scale"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let conv = g.node(n);
        if !is_op(conv, "Conv") {
            return None;
        }
        let m = conv.input(0)?;
        let (mul, _) = g.value(m).producer()?;
        let mul_node = g.node(mul);
        if !is_op(mul_node, "Mul") || !single_use(g, m) || mul_node.inputs().len() != 2 {
            return None;
        }
        let (a, b) = (mul_node.input(0)?, mul_node.input(1)?);
        let scalar = |v| {
            constant(g, Some(v))
                .filter(|t| t.dtype() == DataType::Float && t.element_count().is_ok_and(|c| c == 1))
        };
        let (x, sv, s) = match (scalar(a), scalar(b)) {
            (None, Some(t)) => (a, b, t.to_f32_vec().ok()?[0]),
            (Some(t), None) => (b, a, t.to_f32_vec().ok()?[0]),
            _ => return None,
        };
        let after_mul = g
            .value(x)
            .producer()
            .is_some_and(|(p, _)| is_op(g.node(p), "Mul"));
        if cx.opset >= 20 && s == 0.5 && after_mul {
            return None;
        }
        let wv = conv.input(1)?;
        let w = constant(g, Some(wv))?;
        if w.dtype() != DataType::Float || g.value(wv).uses().len() != 1 || !s.is_finite() {
            return None;
        }
        let scaled: Vec<f32> = w.to_f32_vec().ok()?.iter().map(|v| v * s).collect();
        let (dims, name) = (w.dims.clone(), g.value(wv).name().to_string());
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 1, None);
            drop_if_unused(g, wv); // frees the name for the scaled weight
            let t = Tensor::from_f32(dims, &scaled);
            let nw = match g.find(&name) {
                None => {
                    let v = g.intern(&name);
                    g.set_initializer(v, t);
                    v
                }
                Some(_) => g.add_initializer(&name, t),
            };
            g.set_input(n, 1, Some(nw));
            g.set_input(n, 0, Some(x));
            g.remove_node(mul);
            drop_if_unused(g, sv);
            Ok(())
        }))
    }
}
