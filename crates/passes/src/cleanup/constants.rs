//! `constant-nodes`: `Constant` nodes become initializers.

use crate::guard::is_op;
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Graph, NodeId, Tensor};

/// `y = Constant() {value=...}` becomes the initializer `y`, in subgraphs too (their
/// initializers are read by ONNX Runtime and tract alike, and folding inside a body
/// needs them). Kept: graph outputs (the interface), constants of subgraphs before IR
/// version 4 (whose initializers would have to be inputs), sparse and string constants.
pub struct ConstantToInitializer;

/// The tensor a Constant node defines, for the forms folding understands.
fn constant_tensor(node: &whittle_ir::Node) -> Option<Tensor> {
    let a = |n: &str| node.attr(n);
    if let Some(t) = a("value").and_then(|a| a.t.as_deref()) {
        return Some(t.clone());
    }
    if let Some(f) = a("value_float").and_then(|a| a.f) {
        return Some(Tensor::from_f32(vec![], &[f]));
    }
    if let Some(v) = a("value_floats") {
        return Some(Tensor::from_f32(vec![v.floats.len() as i64], &v.floats));
    }
    if let Some(i) = a("value_int").and_then(|a| a.i) {
        return Some(Tensor::from_i64(vec![], &[i]));
    }
    a("value_ints").map(|v| Tensor::from_i64(vec![v.ints.len() as i64], &v.ints))
}

impl Rule for ConstantToInitializer {
    fn name(&self) -> &'static str {
        "constant-to-initializer"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let node = g.node(n);
        if !is_op(node, "Constant") || !cx.initializers {
            return None;
        }
        let y = node.output(0)?;
        if g.is_output(y) || node.outputs().len() != 1 {
            return None;
        }
        let mut t = constant_tensor(node)?;
        if t.dtype() == whittle_ir::DataType::String || t.is_external() {
            return None;
        }
        t.name = Some(g.value(y).name().to_string());
        Some(Box::new(move |g: &mut Graph| {
            g.remove_node(n);
            g.set_initializer(y, t);
            Ok(())
        }))
    }
}
