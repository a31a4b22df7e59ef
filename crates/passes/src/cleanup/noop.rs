//! `no-op`: ops that return their input unchanged, bypassed.
//!
//! Each rule proves the op is the identity from types and constants: Dropout in
//! inference mode, Cast/CastLike to the same type, Reshape/Expand/Flatten/Squeeze/
//! Unsqueeze/Slice that keep the (fully known or identically symbolic) shape, identity
//! Transpose, zero Pad, single-input Concat, single-output Split, and x+0, x-0, x·1, x/1,
//! x∧true, x∨false where broadcasting leaves x's shape and type unchanged.

use crate::edit::bypass;
use crate::guard::{const_all, const_ints, constant, dims, elem, is_op};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Dim, Graph, NodeId, ValueId};

/// The rules of the `no-op` pass: ops that do nothing, inputs given their default value
/// (a recurrent op's zero initial state) and inputs that add nothing (an empty Concat
/// input).
pub fn rules() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(NoOp),
        Box::new(super::ZeroInitialState),
        Box::new(super::EmptyConcatInput),
    ]
}

/// One rule for the whole family: each op has its own proof below.
pub struct NoOp;

/// Same shape, and every dim known or the same symbol (no unknowns).
fn same_shape(g: &Graph, a: ValueId, b: ValueId) -> bool {
    match (dims(g, a), dims(g, b)) {
        (Some(x), Some(y)) => x == y && !x.contains(&Dim::Unknown),
        _ => false,
    }
}

fn same_type(g: &Graph, a: ValueId, b: ValueId) -> bool {
    elem(g, a).is_some() && elem(g, a) == elem(g, b) && same_shape(g, a, b)
}

/// The value the node passes through unchanged, if it is a no-op.
fn passthrough(g: &Graph, n: NodeId, cx: &RuleCx) -> Option<ValueId> {
    let node = g.node(n);
    if !node.domain().is_empty() {
        return None;
    }
    let x = node.input(0)?;
    let y = node.output(0)?;
    let ok = match node.op() {
        "Dropout" => {
            let mask_unused = node
                .output(1)
                .is_none_or(|m| g.value(m).uses().is_empty() && !g.is_output(m));
            // Before opset 7 `is_test` (default 0, training) decides; from 12 the
            // `training_mode` input (absent = false).
            let inference = if cx.opset < 7 {
                node.attr("is_test").is_some_and(|a| a.i == Some(1))
            } else {
                node.input(2)
                    .is_none_or(|t| constant(g, Some(t)).is_some() && const_all(g, t, 0.0))
            };
            mask_unused && inference
        }
        "Cast" => {
            let to = node.attr("to").and_then(|a| a.i);
            elem(g, x).is_some_and(|e| Some(e.code() as i64) == to)
                && node.attr("saturate").is_none()
        }
        "CastLike" => elem(g, x).is_some() && elem(g, x) == node.input(1).and_then(|t| elem(g, t)),
        "Reshape" | "Expand" | "Flatten" | "Squeeze" | "Unsqueeze" => same_type(g, x, y),
        "Slice" => {
            let steps_one = cx.opset < 10
                || node.input(4).is_none()
                || const_ints(g, node.input(4)).is_some_and(|s| s.iter().all(|v| *v == 1));
            steps_one && same_type(g, x, y)
        }
        "Transpose" => {
            let r = dims(g, x).map(|d| d.len());
            let perm = node.attr("perm").map(|a| a.ints.to_vec());
            match (perm, r) {
                (Some(p), _) if !p.is_empty() => p.iter().enumerate().all(|(i, v)| *v == i as i64),
                (_, Some(r)) => r <= 1,
                _ => false,
            }
        }
        "Pad" => {
            let pads = if cx.opset < 11 {
                node.attr("pads").map(|a| a.ints.to_vec())
            } else {
                const_ints(g, node.input(1))
            };
            pads.is_some_and(|p| p.iter().all(|v| *v == 0)) && same_type(g, x, y)
        }
        // One input: the result is that input, whatever the declared shapes say (an
        // exporter's fresh symbol for the output's batch dim, say).
        "Concat" => node.inputs().len() == 1 && elem(g, x).is_some() && elem(g, x) == elem(g, y),
        "Split" => node.outputs().len() == 1 && same_type(g, x, y),
        "Add" | "Sub" | "Mul" | "Div" | "And" | "Or" => return arithmetic_identity(g, n),
        "Where" => return chosen_branch(g, n, cx),
        _ => false,
    };
    ok.then_some(x)
}

/// x+0, 0+x, x-0, x·1, 1·x, x/1, x∧true, x∨false with the result shaped and typed like x.
/// `Where(c, a, b)` whose condition inference knows to be all true (→ a) or all false
/// (→ b), the branch already of the output's shape and type.
fn chosen_branch(g: &Graph, n: NodeId, cx: &RuleCx) -> Option<ValueId> {
    let node = g.node(n);
    let cond = cx.facts?.fact(node.input(0)?)?.ints()?;
    let branch = if !cond.is_empty() && cond.iter().all(|c| *c != 0) {
        node.input(1)?
    } else if !cond.is_empty() && cond.iter().all(|c| *c == 0) {
        node.input(2)?
    } else {
        return None;
    };
    same_type(g, branch, node.output(0)?).then_some(branch)
}

fn arithmetic_identity(g: &Graph, n: NodeId) -> Option<ValueId> {
    let node = g.node(n);
    let (a, b, y) = (node.input(0)?, node.input(1)?, node.output(0)?);
    let neutral = match node.op() {
        "Add" | "Sub" | "Or" => 0.0,
        _ => 1.0,
    };
    let commutes = matches!(node.op(), "Add" | "Mul" | "And" | "Or");
    let (pick, neutral_v) = if constant(g, Some(b)).is_some() && const_all(g, b, neutral) {
        (a, b)
    } else if commutes && constant(g, Some(a)).is_some() && const_all(g, a, neutral) {
        (b, a)
    } else {
        return None;
    };
    let keeps_shape = same_type(g, pick, y) || broadcasts_into(g, neutral_v, pick);
    (keeps_shape && elem(g, pick).is_some() && elem(g, pick) == elem(g, y)).then_some(pick)
}

/// True when broadcasting constant `c` against `x` cannot change x's shape: c's rank is
/// not larger, and each of c's dims is 1 or equal to x's (known) dim on that axis. x's
/// other dims may be unknown.
fn broadcasts_into(g: &Graph, c: ValueId, x: ValueId) -> bool {
    let (Some(ct), Some(xd)) = (constant(g, Some(c)), dims(g, x)) else {
        return false;
    };
    if ct.dims.len() > xd.len() {
        return false;
    }
    let off = xd.len() - ct.dims.len();
    ct.dims
        .iter()
        .enumerate()
        .all(|(i, d)| *d == 1 || xd[off + i] == Dim::Known(*d))
}

impl Rule for NoOp {
    fn name(&self) -> &'static str {
        "no-op"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let x = passthrough(g, n, cx)?;
        let y = g.node(n).output(0)?;
        if is_op(g.node(n), "Identity") {
            return None;
        }
        Some(Box::new(move |g: &mut Graph| bypass(g, n, y, x)))
    }
}
