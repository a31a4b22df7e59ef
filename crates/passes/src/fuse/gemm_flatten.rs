//! Projections with a bias on 3-D activations, `Reshape(Add(MatMul(x, W), b), t)`, become
//! `Reshape(Gemm(Reshape(x, [-1, K]), W, b), t)`: the flattening Reshape is shared by every
//! projection of the same x (a decoder's q, k and v), and the Reshape that splits heads
//! already follows, so three projections lose their three Adds for one Reshape.

use super::gemm::{MatMulPlus, matmul_plus_constant};
use crate::guard::{const_ints, constant, dims, elem, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{DataType, Dim, Graph, Node, NodeId, Tensor, ValueId};

/// Anchored at the Add. Guards: x is a rank-3 f32 value with a known last dim K; W is a
/// 2-D f32 constant [K, N]; b a f32 constant [N] or [1, N] (Gemm broadcasts it as Add
/// does); the MatMul and Add results each have one reader, the Add's a Reshape reading it
/// as data whose target never copies a dim (`allowzero=1`, or a constant without 0: the
/// data it reshapes changes rank). Fires when x already has its `Reshape(x, [-1, K])`, or
/// when another projection of x qualifies too (one alone would trade an Add for a
/// Reshape and gain nothing).
pub struct MatMulAddFlatten;

/// A projection of x: the MatMul, its weight and bias, the Add, and the Add's output.
struct Projection {
    matmul: NodeId,
    w: ValueId,
    b: ValueId,
    add: NodeId,
    y: ValueId,
}

/// The projection whose Add is `n`, with every guard but the sibling one checked.
fn projection(g: &Graph, n: NodeId) -> Option<(ValueId, Projection)> {
    let MatMulPlus {
        matmul: mm,
        c: b,
        y,
    } = matmul_plus_constant(g, n)?;
    let matmul = g.node(mm);
    if !single_use(g, y) {
        return None;
    }
    let (x, w) = (matmul.input(0)?, matmul.input(1)?);
    let (wt, bt) = (constant(g, Some(w))?, constant(g, Some(b))?);
    let xd = dims(g, x)?;
    let nn = *wt.dims.get(1)?;
    let fits = xd.len() == 3
        && wt.dims.len() == 2
        && xd[2] == Dim::Known(wt.dims[0])
        && (bt.dims == [nn] || bt.dims == [1, nn])
        && [elem(g, x)?, wt.dtype(), bt.dtype()]
            .iter()
            .all(|e| *e == DataType::Float);
    let reader = g.value(y).uses()[0].node;
    let r = g.node(reader);
    let never_copies = r.attr("allowzero").and_then(|a| a.i) == Some(1)
        || const_ints(g, r.input(1)).is_some_and(|t| !t.contains(&0));
    let splits = is_op(r, "Reshape") && r.input(0) == Some(y) && never_copies;
    (fits && splits).then_some((
        x,
        Projection {
            matmul: mm,
            w,
            b,
            add: n,
            y,
        },
    ))
}

/// An existing `Reshape(x, [-1, K])` of x.
fn flattened(g: &Graph, x: ValueId, k: i64) -> Option<ValueId> {
    g.value(x).uses().iter().find_map(|u| {
        let r = g.node(u.node);
        let ok = is_op(r, "Reshape")
            && r.input(0) == Some(x)
            && const_ints(g, r.input(1)).is_some_and(|t| t == [-1, k]);
        ok.then(|| r.output(0)).flatten()
    })
}

impl Rule for MatMulAddFlatten {
    fn name(&self) -> &'static str {
        "matmul-add-flatten"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let (x, p) = projection(g, n)?;
        let Dim::Known(k) = dims(g, x)?[2] else {
            return None;
        };
        if k <= 0 {
            return None;
        }
        let flat = flattened(g, x, k);
        if flat.is_none() {
            let siblings = g
                .value(x)
                .uses()
                .iter()
                .filter_map(|u| g.node(u.node).output(0))
                .filter_map(|m| g.value(m).uses().first().map(|u| u.node))
                .filter(|a| *a != n && projection(g, *a).is_some_and(|(x2, _)| x2 == x))
                .count();
            if siblings == 0 {
                return None;
            }
        }
        let name = g.node(p.matmul).name.clone();
        Some(Box::new(move |g: &mut Graph| {
            let flat = match flat {
                Some(f) => f,
                None => {
                    let shape =
                        g.add_initializer("flatten_shape", Tensor::from_i64(vec![2], &[-1, k]));
                    let f = g.fresh_value("flattened");
                    let r = Node::new("Reshape");
                    g.add_node_at(p.matmul, r, vec![Some(x), Some(shape)], vec![Some(f)])?;
                    f
                }
            };
            g.remove_node(p.add);
            let mut gemm = Node::new("Gemm");
            gemm.name = name;
            // A new value: y's inferred [B, S, N] no longer holds for the 2-D result.
            let out = g.fresh_value("gemm_flat");
            let inputs = vec![Some(flat), Some(p.w), Some(p.b)];
            g.add_node_at(p.matmul, gemm, inputs, vec![Some(out)])?;
            g.remove_node(p.matmul);
            g.replace_all_uses(p.y, out);
            Ok(())
        }))
    }
}
