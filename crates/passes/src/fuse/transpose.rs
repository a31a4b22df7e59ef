//! Consecutive `Transpose`s compose into one, or cancel.

use crate::edit::bypass;
use crate::guard::{dims, is_op, producer_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{Graph, NodeId};

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
