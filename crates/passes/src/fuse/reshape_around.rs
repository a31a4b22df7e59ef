//! Reshape(f(Reshape(x, s1)), s2) = f(x) when f is element-wise and s2 gives back x's
//! shape: the pair of reshapes exporters write around an activation between two Gemms
//! (`[b*s, 4h] → [b, s, 4h] → GELU → [b*s, 4h]` in GPT-2).

use crate::edit::bypass;
use crate::guard::{dims, elem, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::infer::Fact;
use whittle_ir::{Dim, Graph, NodeId, Type, ValueId};

/// Ops computed element by element whose result has the broadcast shape of their inputs,
/// with no attribute that names an axis.
const ELEMENTWISE: &[&str] = &[
    "Abs",
    "Add",
    "Ceil",
    "Clip",
    "Cos",
    "Div",
    "Elu",
    "Erf",
    "Exp",
    "Floor",
    "Gelu",
    "HardSigmoid",
    "HardSwish",
    "Swish",
    "LeakyRelu",
    "Log",
    "Max",
    "Min",
    "Mish",
    "Mul",
    "Neg",
    "Pow",
    "Reciprocal",
    "Relu",
    "Round",
    "Selu",
    "Sigmoid",
    "Sign",
    "Sin",
    "Softplus",
    "Softsign",
    "Sqrt",
    "Sub",
    "Tanh",
];

/// The largest region of element-wise nodes looked at (GELU's tanh form has 8).
const MAX_REGION: usize = 32;

/// See the module docs. Guards: every node between the reshapes is element-wise with a
/// single output; their other inputs are one-element constants of rank at most x's (so
/// broadcasting cannot depend on the layout); the values in between are read only
/// inside the region and are not graph outputs; x and the outer Reshape's result have the
/// same fully known dims and element type.
pub struct ReshapeAroundElementwise;

/// What lies between the two reshapes.
struct Region {
    nodes: Vec<NodeId>,
    /// The inner Reshape's result, read by the region.
    entry: ValueId,
    /// Rank of the highest-rank constant the region broadcasts with.
    const_rank: usize,
}

impl Rule for ReshapeAroundElementwise {
    fn name(&self) -> &'static str {
        "reshape-around-elementwise"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Reshape") || cx.opset < 5 {
            return None;
        }
        let (exit, y) = (outer.input(0)?, outer.output(0)?);
        if !single_use(g, exit) {
            return None;
        }
        let region = region(g, exit)?;
        let inner = g.value(region.entry).producer()?.0;
        let x = g.node(inner).input(0)?;
        let x_dims = known_dims(g, cx, x)?;
        if known_dims(g, cx, y)? != x_dims
            || elem(g, x).or_else(|| fact(cx, x)?.elem)?
                != elem(g, y).or_else(|| fact(cx, y)?.elem)?
            || region.const_rank > x_dims.len()
            || !closed(g, &region, exit)
        {
            return None;
        }
        Some(Box::new(move |g: &mut Graph| {
            for &m in &region.nodes {
                for slot in 0..g.node(m).inputs().len() {
                    if g.node(m).input(slot) == Some(region.entry) {
                        g.set_input(m, slot, Some(x));
                    }
                }
                if let Some(v) = g.node(m).output(0) {
                    let e = g.value(v).info.ty.as_ref().and_then(Type::elem);
                    g.value_mut(v).info.ty = e.map(|e| Type::tensor(e, x_dims.clone()));
                }
            }
            bypass(g, n, y, exit)?;
            if g.value(region.entry).uses().is_empty() && !g.is_output(region.entry) {
                g.remove_node(inner);
            }
            Ok(())
        }))
    }
}

/// What inference found for `v` (main graph only).
fn fact<'a>(cx: &RuleCx<'a>, v: ValueId) -> Option<&'a Fact> {
    cx.facts?.fact(v)
}

/// The dims of `v` (declared, else inferred) when every one is known or symbolic.
fn known_dims(g: &Graph, cx: &RuleCx, v: ValueId) -> Option<Vec<Dim>> {
    let d = dims(g, v).or_else(|| fact(cx, v)?.dims.clone())?;
    (!d.iter().any(|d| matches!(d, Dim::Unknown))).then_some(d)
}

/// The element-wise nodes computing `exit` back to one Reshape result.
fn region(g: &Graph, exit: ValueId) -> Option<Region> {
    let mut nodes: Vec<NodeId> = Vec::new();
    let mut entry: Option<ValueId> = None;
    let mut const_rank = 0;
    let mut stack = vec![g.value(exit).producer()?.0];
    while let Some(m) = stack.pop() {
        if nodes.contains(&m) {
            continue;
        }
        let node = g.node(m);
        let elementwise = ELEMENTWISE.iter().any(|op| is_op(node, op));
        if !elementwise || node.outputs().len() != 1 || nodes.len() == MAX_REGION {
            return None;
        }
        nodes.push(m);
        for v in node.inputs().iter().flatten().copied() {
            if let Some(t) = g.constant(v) {
                if t.element_count().ok() != Some(1) {
                    return None;
                }
                const_rank = const_rank.max(t.dims.len());
                continue;
            }
            let p = g.value(v).producer()?.0;
            if is_op(g.node(p), "Reshape") {
                if entry.is_some_and(|e| e != v) {
                    return None;
                }
                entry = Some(v);
            } else {
                stack.push(p);
            }
        }
    }
    Some(Region {
        nodes,
        entry: entry?,
        const_rank,
    })
}

/// True when the region's values other than `exit` are read only inside it and none is
/// a graph output.
fn closed(g: &Graph, region: &Region, exit: ValueId) -> bool {
    region.nodes.iter().all(|&m| {
        g.node(m).output(0).is_some_and(|v| {
            v == exit
                || (!g.is_output(v)
                    && g.value(v)
                        .uses()
                        .iter()
                        .all(|u| region.nodes.contains(&u.node)))
        })
    })
}
