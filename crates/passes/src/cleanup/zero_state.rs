//! Recurrent ops given an initial state of zeros: the state is dropped, since an absent
//! `initial_h` / `initial_c` is zeros by definition (ONNX RNN, GRU, LSTM). Exporters build
//! that state from the input's shape (`Shape → Gather → Concat → ConstantOfShape`, then
//! a `Slice` per layer); once no op reads it, dead-code removes the chain.

use crate::guard::is_op;
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Graph, NodeId, ValueId};

/// `GRU(x, W, R, B, lens, h0)` with h0 all zeros = `GRU(x, W, R, B, lens)`; the same for
/// RNN and for LSTM's `initial_h` and `initial_c`. A value is all zeros when it is a
/// constant whose bytes are all zero (so −0.0 does not count), a `ConstantOfShape` whose
/// value is such a constant (or absent: 0.0), or a Slice, Reshape, Expand, Squeeze,
/// Unsqueeze, Transpose or Identity of an all-zero value. Guard: the state's element
/// type is the op's (a Cast in between is not looked through).
pub struct ZeroInitialState;

/// Input slots of the initial states, per op.
fn state_slots(op: &str) -> &'static [usize] {
    match op {
        "RNN" | "GRU" => &[5],
        "LSTM" => &[5, 6],
        _ => &[],
    }
}

/// Ops whose output is all zeros when their first input is.
const ZERO_PRESERVING: &[&str] = &[
    "Slice",
    "Reshape",
    "Expand",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Identity",
];

/// True when `v` is all zeros (see [`ZeroInitialState`]); `depth` bounds the walk.
fn all_zero(g: &Graph, v: ValueId, depth: usize) -> bool {
    if let Some(t) = g.constant(v) {
        return t.le_bytes().is_ok_and(|b| b.iter().all(|x| *x == 0));
    }
    let Some((p, _)) = g.value(v).producer() else {
        return false;
    };
    let node = g.node(p);
    if is_op(node, "ConstantOfShape") {
        return match node.attr("value").and_then(|a| a.t.as_deref()) {
            None => true,
            Some(t) => t.le_bytes().is_ok_and(|b| b.iter().all(|x| *x == 0)),
        };
    }
    depth > 0
        && ZERO_PRESERVING.iter().any(|op| is_op(node, op))
        && node.input(0).is_some_and(|x| all_zero(g, x, depth - 1))
}

impl Rule for ZeroInitialState {
    fn name(&self) -> &'static str {
        "zero-initial-state"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let node = g.node(n);
        if !node.domain().is_empty() {
            return None;
        }
        let x_elem = crate::guard::elem(g, node.input(0)?)?;
        let zero: Vec<usize> = state_slots(node.op())
            .iter()
            .copied()
            .filter(|s| {
                node.input(*s)
                    .is_some_and(|v| crate::guard::elem(g, v) == Some(x_elem) && all_zero(g, v, 6))
            })
            .collect();
        if zero.is_empty() {
            return None;
        }
        Some(Box::new(move |g: &mut Graph| {
            for s in zero {
                g.set_input(n, s, None);
            }
            // Trailing absent inputs are not written at all.
            let used = g.node(n).inputs().iter().rposition(Option::is_some);
            g.truncate_inputs(n, used.map_or(0, |i| i + 1));
            Ok(())
        }))
    }
}
