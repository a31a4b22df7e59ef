//! Transposes: consecutive ones compose into one or cancel; one that moves only unit
//! axes is a Reshape.

use crate::edit::bypass;
use crate::guard::{dims, is_op, producer_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{Dim, Graph, Node, NodeId, Tensor};

/// Transpose(Transpose(x, p), q) = Transpose(x, r) with r[i] = p[q[i]]; identity r
/// removes both. Guard: the inner result feeds only the outer Transpose.
pub struct TransposeChain;

fn perm(g: &Graph, n: NodeId) -> Option<Vec<i64>> {
    let node = g.node(n);
    match node.attr("perm") {
        Some(a) if !a.ints.is_empty() => Some(a.ints.to_vec()),
        _ => {
            let r = dims(g, node.input(0)?)?.len() as i64;
            Some((0..r).rev().collect())
        }
    }
}

impl Rule for TransposeChain {
    fn name(&self) -> &'static str {
        "transpose-chain"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Transpose") {
            return None;
        }
        let (t, y) = (outer.input(0)?, outer.output(0)?);
        let inner = producer_op(g, t, "Transpose")?;
        if !single_use(g, t) {
            return None;
        }
        let x = g.node(inner).input(0)?;
        let (p, q) = (perm(g, inner)?, perm(g, n)?);
        if p.len() != q.len() {
            return None;
        }
        let r: Vec<i64> = q
            .iter()
            .map(|i| usize::try_from(*i).ok().and_then(|i| p.get(i).copied()))
            .collect::<Option<_>>()?;
        let identity = r.iter().enumerate().all(|(i, v)| *v == i as i64);
        Some(Box::new(move |g: &mut Graph| {
            if identity {
                bypass(g, n, y, x)?;
            } else {
                g.set_input(n, 0, Some(x));
                g.node_mut(n).set_attr(Attribute::ints("perm", r));
            }
            g.remove_node(inner);
            Ok(())
        }))
    }
}

/// Transpose(x, p) = Reshape(x, s) when p moves only axes of size 1: the other axes keep
/// their relative order, so the elements stay where they are in memory (a decode step's
/// `[B,1,H,D] → [B,H,1,D]`). Reshapes then merge with their neighbours
/// ([`super::ReshapeChain`]). `s` gives each output axis as 1 (a unit axis), its known
/// size, 0 (copy the input's dim at that index, when the axis did not move) or -1 (at most
/// one axis of unknown size that moved). Guards: opset ≥ 5 (shape as an input); x's rank
/// is known; no axis has a known size of 0 (a literal 0 would read as "copy"); at most
/// one moved axis of unknown size.
pub struct TransposeUnitAxes;

impl Rule for TransposeUnitAxes {
    fn name(&self) -> &'static str {
        "transpose-unit-axes"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let node = g.node(n);
        if !is_op(node, "Transpose") || cx.opset < 5 {
            return None;
        }
        let (x, y) = (node.input(0)?, node.output(0)?);
        let d = dims(g, x)?;
        let p = perm(g, n)?;
        if p.len() != d.len() || p.iter().enumerate().all(|(i, a)| *a == i as i64) {
            return None;
        }
        let shape = unit_axes_shape(&d, &p)?;
        let name = node.name.clone();
        Some(Box::new(move |g: &mut Graph| {
            let s = g.add_initializer(
                "transpose_shape",
                Tensor::from_i64(vec![shape.len() as i64], &shape),
            );
            g.remove_node(n);
            let mut reshape = Node::new("Reshape");
            reshape.name = name;
            g.add_node(reshape, vec![Some(x), Some(s)], vec![Some(y)])?;
            Ok(())
        }))
    }
}

/// The Reshape target that does what Transpose(perm `p`) does to dims `d`, when `p` moves
/// only unit axes (see [`TransposeUnitAxes`]).
fn unit_axes_shape(d: &[Dim], p: &[i64]) -> Option<Vec<i64>> {
    let unit = |i: usize| d[i] == Dim::Known(1);
    if d.contains(&Dim::Known(0)) {
        return None;
    }
    let moved: Vec<usize> = p
        .iter()
        .map(|a| usize::try_from(*a).ok().filter(|a| *a < d.len()))
        .collect::<Option<_>>()?;
    let kept_in: Vec<usize> = (0..d.len()).filter(|i| !unit(*i)).collect();
    let kept_out: Vec<usize> = moved.iter().copied().filter(|a| !unit(*a)).collect();
    if kept_in != kept_out {
        return None;
    }
    let mut shape = Vec::with_capacity(d.len());
    let mut inferred = false;
    for (j, a) in moved.into_iter().enumerate() {
        shape.push(match &d[a] {
            Dim::Known(k) => *k,
            _ if a == j => 0,
            _ if !inferred => {
                inferred = true;
                -1
            }
            _ => return None,
        });
    }
    Some(shape)
}
