//! Per-op inference rules, one file per op family. [`infer_node`] dispatches on the op;
//! ops of other domains and ops without a rule give no facts.

mod broadcast;
mod conv;
mod elementwise;
mod indexing;
mod linalg;
mod normalize;
mod reduce;
mod shape_ops;

pub use linalg::Equation;

use super::ctx::{Ctx, RuleResult};

/// The facts of `cx.node`'s outputs.
pub fn infer_node(cx: &mut Ctx) -> RuleResult {
    if !matches!(cx.node.domain(), "" | "ai.onnx") {
        return Ok(Vec::new());
    }
    let op = cx.node.op().to_string();
    if let Some(r) = elementwise::rule(&op, cx) {
        return r;
    }
    if let Some(r) = shape_ops::rule(&op, cx) {
        return r;
    }
    if let Some(r) = indexing::rule(&op, cx) {
        return r;
    }
    if let Some(r) = conv::rule(&op, cx) {
        return r;
    }
    if let Some(r) = linalg::rule(&op, cx) {
        return r;
    }
    if let Some(r) = reduce::rule(&op, cx) {
        return r;
    }
    if let Some(r) = normalize::rule(&op, cx) {
        return r;
    }
    Ok(Vec::new())
}
