//! `fold-constants`: a node whose inputs are all constants is evaluated once (by the
//! run's evaluator: tract, in whittle) and replaced by its results.
//!
//! Guards: default-domain ops only, no subgraphs, nothing random, not DequantizeLinear
//! (quantized weights stay quantized); results must come back with the element type and
//! shape the graph declares, else the node is left alone; a result may exceed the fold
//! limit (1 MiB by default) only if it is no larger than the constants it consumes. tract
//! failures and panics leave the node as it was.

use crate::edit::drop_if_unused;
use crate::guard::{RANDOM_OPS, dims, elem};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::infer::Poly;
use whittle_ir::{Dim, Graph, NodeId, Tensor, ValueId};

/// Evaluates constant nodes.
pub struct FoldConstants;

/// Ops never folded: their result is not a function of their inputs alone, or folding
/// would undo a deliberate encoding.
const NEVER: &[&str] = &[
    "DequantizeLinear",
    "Constant",
    "If",
    "Loop",
    "Scan",
    "SequenceEmpty",
];

/// Bytes of `v` from its inferred type, when fully known.
fn bytes_of(g: &Graph, v: ValueId) -> Option<u64> {
    let d = dims(g, v)?;
    let n = d.iter().try_fold(1u64, |acc, x| match x {
        Dim::Known(k) if *k >= 0 => acc.checked_mul(*k as u64),
        _ => None,
    })?;
    elem(g, v)?.storage_bytes(n)
}

impl Rule for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }

    fn evaluates(&self) -> bool {
        true
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let evaluator = cx.evaluator?;
        let node = g.node(n);
        if !node.domain().is_empty()
            || node.has_subgraphs()
            || NEVER.contains(&node.op())
            || RANDOM_OPS.contains(&node.op())
        {
            return None;
        }
        // Nodes without inputs (RandomNormal, ...) have nothing to fold from.
        node.inputs().iter().flatten().next()?;
        let inputs: Vec<Option<&Tensor>> = node
            .inputs()
            .iter()
            .map(|v| v.map(|v| g.constant(v)))
            .map(|c| match c {
                None => Some(None),
                Some(Some(t)) => Some(Some(t)),
                Some(None) => None,
            })
            .collect::<Option<_>>()?;
        let outs: Vec<ValueId> = node.outputs().iter().flatten().copied().collect();
        if outs.is_empty()
            || outs.len() != node.outputs().len()
            || outs.iter().any(|v| g.is_output(*v))
        {
            return None;
        }
        // Bytes this fold frees: constants read only by this node.
        let freed: u64 = node
            .inputs()
            .iter()
            .flatten()
            .filter(|v| g.value(**v).uses().len() == 1)
            .filter_map(|v| g.constant(*v).map(Tensor::stored_bytes))
            .sum();
        let limit = cx.fold_limit.max(freed);
        let predicted: Option<u64> = outs.iter().map(|v| bytes_of(g, *v)).sum();
        if predicted.is_some_and(|b| b > limit) {
            return None;
        }
        let results = match evaluator.eval_node(node, &inputs, outs.len(), cx.opsets) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(node = %node.label(), "fold-constants: left alone: {e}");
                return None;
            }
        };
        if results.len() != outs.len()
            || results.iter().map(Tensor::stored_bytes).sum::<u64>() > limit
        {
            return None;
        }
        let mut folded = Vec::new();
        for (v, t) in outs.iter().copied().zip(results) {
            let declared_elem = elem(g, v)?;
            let mut t = cast_to(t, declared_elem)?;
            if !shape_matches(&dims(g, v)?, &t.dims) {
                tracing::debug!(node = %node.label(), "fold-constants: result type differs from the declared one");
                return None;
            }
            t.name = Some(g.value(v).name().to_string());
            folded.push((v, t));
        }
        let consumed: Vec<ValueId> = node.inputs().iter().flatten().copied().collect();
        Some(Box::new(move |g: &mut Graph| {
            g.remove_node(n);
            for (v, t) in folded {
                g.set_initializer(v, t);
            }
            // Constants only this node read go now, so their memory does too.
            for v in consumed {
                drop_if_unused(g, v);
            }
            Ok(())
        }))
    }
}

/// `t` converted to the declared element type where the conversion is exact (tract
/// computes some integer ops at another width); None otherwise.
fn cast_to(t: Tensor, want: whittle_ir::DataType) -> Option<Tensor> {
    use whittle_ir::DataType::*;
    let have = t.dtype();
    if have == want {
        return Some(t);
    }
    let raw: Vec<u8> = match (have, want) {
        (Int64, Int32) => t
            .to_i64_vec()
            .ok()?
            .iter()
            .map(|v| i32::try_from(*v).ok())
            .collect::<Option<Vec<i32>>>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        (Int32, Int64) => t
            .to_i64_vec()
            .ok()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        _ => return None,
    };
    Some(Tensor::from_raw(want, t.dims.clone(), raw.into()))
}

/// The computed dims agree with every dim the graph knows.
fn shape_matches(declared: &[Dim], got: &[i64]) -> bool {
    declared.len() == got.len()
        && declared.iter().zip(got).all(|(d, g)| match d {
            Dim::Known(k) => k == g,
            Dim::Param(p) => Poly::parse(p).as_const().is_none_or(|c| c == *g),
            Dim::Unknown => true,
        })
}
