//! The decomposed layer norm, (x − mean)/sqrt(var + ε)·γ + β over the last axis, becomes
//! one `LayerNormalization` (opset ≥ 17).

use crate::guard::{constant, dims, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{DataType, Dim, Graph, Node, NodeId, Tensor, ValueId};

/// Anchored at the Div: n = d / Sqrt(ReduceMean(Pow(d, 2)) + ε) with d = x − ReduceMean(x),
/// both means over the last axis with keepdims; then optionally ·γ and +β (constants
/// of the last dim's size). Guards: opset ≥ 17; f32; d is read only by the Pow (or Mul
/// d·d) and the Div, every other intermediate once; none is a graph output.
pub struct LayerNormPattern;

pub(super) fn producer_if(g: &Graph, v: ValueId, op: &str) -> Option<NodeId> {
    let (p, _) = g.value(v).producer()?;
    is_op(g.node(p), op).then_some(p)
}

/// True when the ReduceMean node averages the last axis only, keeping dims.
pub(super) fn last_axis_mean(g: &Graph, n: NodeId, opset: i64, rank: usize) -> bool {
    let node = g.node(n);
    let keep = node.attr("keepdims").and_then(|a| a.i).unwrap_or(1) == 1;
    let axes = if opset < 18 {
        node.attr("axes").map(|a| a.ints.to_vec())
    } else {
        constant(g, node.input(1)).and_then(|t| t.to_i64_vec().ok())
    };
    keep && axes.is_some_and(|a| a.len() == 1 && (a[0] == -1 || a[0] == rank as i64 - 1))
}

pub(super) fn f32_scalar(g: &Graph, v: ValueId) -> Option<f32> {
    let t = constant(g, Some(v))?;
    let x = t.to_f32_vec().ok()?;
    (t.dtype() == DataType::Float && x.len() == 1).then(|| x[0])
}

/// The other operand of a binary op whose constant operand is a vector of `c` floats.
pub(super) fn affine_partner(
    g: &Graph,
    n: NodeId,
    op: &str,
    v: ValueId,
    c: i64,
) -> Option<ValueId> {
    let node = g.node(n);
    if !is_op(node, op) {
        return None;
    }
    let other = if node.input(0)? == v {
        node.input(1)?
    } else {
        node.input(0)?
    };
    let t = constant(g, Some(other))?;
    (t.dtype() == DataType::Float && t.dims == [c]).then_some(other)
}

/// The optional affine tail after the normalization: `·γ` then `+β`.
struct Affine {
    /// The value the fused op writes (the tail's last output).
    y: ValueId,
    gamma: Option<ValueId>,
    beta: Option<ValueId>,
    /// The Mul and Add nodes taken.
    tail: Vec<NodeId>,
}

/// Follows the normalized value `y` through a single-use `Mul(γ)` and then `Add(β)` of
/// `c` channels, as far as they go.
fn affine_tail(g: &Graph, mut y: ValueId, c: i64) -> Option<Affine> {
    let (mut gamma, mut beta, mut tail) = (None, None, Vec::new());
    if single_use(g, y) {
        let m = g.value(y).uses()[0].node;
        if let Some(gm) = affine_partner(g, m, "Mul", y, c) {
            gamma = Some(gm);
            y = g.node(m).output(0)?;
            tail.push(m);
            if single_use(g, y) {
                let a = g.value(y).uses()[0].node;
                if let Some(bt) = affine_partner(g, a, "Add", y, c) {
                    beta = Some(bt);
                    y = g.node(a).output(0)?;
                    tail.push(a);
                }
            }
        }
    }
    Some(Affine {
        y,
        gamma,
        beta,
        tail,
    })
}

impl Rule for LayerNormPattern {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let div = g.node(n);
        if cx.opset < 17 || !is_op(div, "Div") {
            return None;
        }
        let (d, s) = (div.input(0)?, div.input(1)?);
        let sub = producer_if(g, d, "Sub")?;
        let (x, mean) = (g.node(sub).input(0)?, g.node(sub).input(1)?);
        let xd = dims(g, x)?;
        let rank = xd.len();
        let Some(Dim::Known(c)) = xd.last().cloned() else {
            return None;
        };
        let rm1 = producer_if(g, mean, "ReduceMean")?;
        if g.node(rm1).input(0)? != x || !last_axis_mean(g, rm1, cx.opset, rank) {
            return None;
        }
        let sqrt = producer_if(g, s, "Sqrt")?;
        let ve = g.node(sqrt).input(0)?;
        let add = producer_if(g, ve, "Add")?;
        let (p0, p1) = (g.node(add).input(0)?, g.node(add).input(1)?);
        let (var, eps) = match (f32_scalar(g, p1), f32_scalar(g, p0)) {
            (Some(e), _) => (p0, e),
            (None, Some(e)) => (p1, e),
            _ => return None,
        };
        let rm2 = producer_if(g, var, "ReduceMean")?;
        if !last_axis_mean(g, rm2, cx.opset, rank) {
            return None;
        }
        let sq = g.node(rm2).input(0)?;
        let pow = g.value(sq).producer()?.0;
        let pn = g.node(pow);
        let squares_d =
            (is_op(pn, "Pow") && pn.input(0)? == d && f32_scalar(g, pn.input(1)?) == Some(2.0))
                || (is_op(pn, "Mul") && pn.input(0)? == d && pn.input(1)? == d);
        if !squares_d || g.value(d).uses().len() != 2 || g.is_output(d) {
            return None;
        }
        for v in [mean, sq, var, ve, s] {
            if !single_use(g, v) {
                return None;
            }
        }
        let mut nodes = vec![rm1, sub, pow, rm2, add, sqrt, n];
        let Affine {
            y,
            gamma,
            beta,
            tail,
        } = affine_tail(g, div.output(0)?, c)?;
        nodes.extend(tail);
        let name = g.node(n).name.clone();
        Some(Box::new(move |g: &mut Graph| {
            let gamma = match gamma {
                Some(v) => v,
                None => g.add_initializer(
                    "layer_norm_scale",
                    Tensor::from_f32(vec![c], &vec![1.0; c as usize]),
                ),
            };
            let anchor = nodes[0];
            for k in &nodes[1..] {
                g.remove_node(*k);
            }
            let mut ln = Node::new("LayerNormalization")
                .with_attr(Attribute::int("axis", -1))
                .with_attr(Attribute::float("epsilon", eps));
            ln.name = name;
            g.add_node_at(anchor, ln, vec![Some(x), Some(gamma), beta], vec![Some(y)])?;
            g.remove_node(anchor);
            Ok(())
        }))
    }
}
