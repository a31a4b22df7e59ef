//! The decomposed RMS norm of Llama-style decoders, x / sqrt(mean(x²) + ε) · γ over the
//! last axis, becomes one `RMSNormalization` (opset ≥ 23).

use super::layernorm::{affine_partner, f32_scalar, last_axis_mean, producer_if};
use crate::guard::{dims, elem, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{DataType, Dim, Graph, Node, NodeId, Tensor, ValueId};

/// Anchored at the normalizing node: `Mul(x, r)` (either order) with r =
/// `Reciprocal(Sqrt(e))` or `Div(1, Sqrt(e))`, or `Div(x, Sqrt(e))`; e = `Add(m, ε)`,
/// m = `ReduceMean(Pow(x, 2) or Mul(x, x))` over the last axis with keepdims; then
/// optionally `·γ` (a constant of the last dim's size). Guards: opset ≥ 23; x f32 with a
/// known last dim; every intermediate read once and no graph output (x itself may have
/// other readers: it is the residual stream).
pub struct RmsNormPattern;

/// What the normalization reads: x, the Sqrt node, and the nodes between (anchor excluded).
struct Norm {
    x: ValueId,
    sqrt: NodeId,
    between: Vec<NodeId>,
}

/// The anchor's x and Sqrt: `Div(x, Sqrt)`, or `Mul` of x and a reciprocal of a Sqrt.
fn normalized(g: &Graph, n: NodeId) -> Option<Norm> {
    let node = g.node(n);
    let (a, b) = (node.input(0)?, node.input(1)?);
    if is_op(node, "Div") {
        let sqrt = producer_if(g, b, "Sqrt")?;
        return Some(Norm {
            x: a,
            sqrt,
            between: vec![],
        });
    }
    if !is_op(node, "Mul") {
        return None;
    }
    for (x, r) in [(a, b), (b, a)] {
        let Some((p, _)) = g.value(r).producer() else {
            continue;
        };
        let pn = g.node(p);
        let s = if is_op(pn, "Reciprocal") {
            pn.input(0)
        } else if is_op(pn, "Div") && pn.input(0).and_then(|o| f32_scalar(g, o)) == Some(1.0) {
            pn.input(1)
        } else {
            None
        };
        if let Some(sqrt) = s.and_then(|s| producer_if(g, s, "Sqrt"))
            && single_use(g, r)
        {
            return Some(Norm {
                x,
                sqrt,
                between: vec![p],
            });
        }
    }
    None
}

/// The Add(mean, ε) under the Sqrt: the mean's value, ε, and the Add node.
fn mean_plus_eps(g: &Graph, sqrt: NodeId) -> Option<(ValueId, f32, NodeId)> {
    let add = producer_if(g, g.node(sqrt).input(0)?, "Add")?;
    let (p0, p1) = (g.node(add).input(0)?, g.node(add).input(1)?);
    match (f32_scalar(g, p1), f32_scalar(g, p0)) {
        (Some(e), _) => Some((p0, e, add)),
        (None, Some(e)) => Some((p1, e, add)),
        _ => None,
    }
}

impl Rule for RmsNormPattern {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        if cx.opset < 23 {
            return None;
        }
        let Norm { x, sqrt, between } = normalized(g, n)?;
        let xd = dims(g, x)?;
        let Some(Dim::Known(c)) = xd.last().cloned() else {
            return None;
        };
        if elem(g, x) != Some(DataType::Float) {
            return None;
        }
        let (mean, eps, add) = mean_plus_eps(g, sqrt)?;
        let rm = producer_if(g, mean, "ReduceMean")?;
        if !last_axis_mean(g, rm, cx.opset, xd.len()) {
            return None;
        }
        let sq = g.node(rm).input(0)?;
        let pow = g.value(sq).producer()?.0;
        let pn = g.node(pow);
        let squares_x =
            (is_op(pn, "Pow") && pn.input(0)? == x && f32_scalar(g, pn.input(1)?) == Some(2.0))
                || (is_op(pn, "Mul") && pn.input(0)? == x && pn.input(1)? == x);
        let sqrt_out = g.node(sqrt).output(0)?;
        let add_out = g.node(add).output(0)?;
        if !squares_x
            || ![sq, mean, add_out, sqrt_out]
                .iter()
                .all(|v| single_use(g, *v))
        {
            return None;
        }
        // The Pow first (it is where the fused node goes: x is defined before it).
        let mut nodes = vec![pow, rm, add, sqrt, n];
        nodes.extend(between);
        let mut y = g.node(n).output(0)?;
        let mut gamma = None;
        if single_use(g, y) {
            let m = g.value(y).uses()[0].node;
            if let Some(gm) = affine_partner(g, m, "Mul", y, c) {
                gamma = Some(gm);
                nodes.push(m);
                y = g.node(m).output(0)?;
            }
        }
        let fused = Fused {
            x,
            gamma,
            y,
            eps,
            c,
            name: g.node(n).name.clone(),
        };
        Some(Box::new(move |g: &mut Graph| fused.apply(g, &nodes)))
    }
}

/// The fused node's inputs, output and attributes.
struct Fused {
    x: ValueId,
    gamma: Option<ValueId>,
    y: ValueId,
    eps: f32,
    c: i64,
    name: Option<String>,
}

impl Fused {
    /// Removes `nodes` and writes y with one `RMSNormalization(x, γ or ones)` where the
    /// first of them was.
    fn apply(self, g: &mut Graph, nodes: &[NodeId]) -> Result<(), whittle_ir::IrError> {
        let gamma = match self.gamma {
            Some(v) => v,
            None => g.add_initializer(
                "rms_norm_scale",
                Tensor::from_f32(vec![self.c], &vec![1.0; self.c as usize]),
            ),
        };
        for k in &nodes[1..] {
            g.remove_node(*k);
        }
        let mut op = Node::new("RMSNormalization")
            .with_attr(Attribute::int("axis", -1))
            .with_attr(Attribute::float("epsilon", self.eps));
        op.name = self.name;
        g.add_node_at(
            nodes[0],
            op,
            vec![Some(self.x), Some(gamma)],
            vec![Some(self.y)],
        )?;
        g.remove_node(nodes[0]);
        Ok(())
    }
}
