//! Concat inputs with no elements along the concat axis add nothing: they are dropped.
//! Exporters produce them for padding or masks of a length that is 0 for this model
//! (`ConstantOfShape([batch, 0, 1])` concatenated on axis 1); the chain that built the
//! empty tensor then goes with dead-code.

use crate::guard::{dims, is_op};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Dim, Graph, NodeId};

/// `Concat(a, e, b)` = `Concat(a, b)` when `e`'s dim on the concat axis is known to be
/// 0. Guards: the axis and e's rank are known; at least one input stays (a Concat of one
/// input is then the no-op pass's).
pub struct EmptyConcatInput;

impl Rule for EmptyConcatInput {
    fn name(&self) -> &'static str {
        "empty-concat-input"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let node = g.node(n);
        if !is_op(node, "Concat") {
            return None;
        }
        let axis = node.attr("axis")?.i?;
        let inputs: Vec<_> = node
            .inputs()
            .iter()
            .map(|v| (*v)?.into())
            .collect::<Option<Vec<_>>>()?;
        let empty = |v| {
            dims(g, v).is_some_and(|d: Vec<Dim>| {
                let rank = d.len() as i64;
                let a = if axis < 0 { axis + rank } else { axis };
                usize::try_from(a)
                    .ok()
                    .and_then(|a| d.get(a))
                    .is_some_and(|x| *x == Dim::Known(0))
            })
        };
        let kept: Vec<_> = inputs.iter().copied().filter(|v| !empty(*v)).collect();
        if kept.len() == inputs.len() || kept.is_empty() {
            return None;
        }
        Some(Box::new(move |g: &mut Graph| {
            for (i, v) in kept.iter().enumerate() {
                g.set_input(n, i, Some(*v));
            }
            g.truncate_inputs(n, kept.len());
            Ok(())
        }))
    }
}
