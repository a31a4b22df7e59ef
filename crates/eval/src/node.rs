//! Evaluating one node on constant inputs (constant folding).

use crate::run::{EvalError, run_model};
use whittle_ir::evaluate::NodeEvaluator;
use whittle_ir::{Graph, Model, Node, OpsetImport, Tensor};

/// Constant folding's evaluator: each node in tract, whatever runtime a run checks in, so
/// that a model folds the same everywhere.
pub struct TractNodes;

impl NodeEvaluator for TractNodes {
    fn eval_node(
        &self,
        node: &Node,
        inputs: &[Option<&Tensor>],
        outputs: usize,
        opsets: &[OpsetImport],
    ) -> Result<Vec<Tensor>, String> {
        eval_node(node, inputs, outputs, opsets).map_err(|e| e.to_string())
    }
}

/// Runs `node` alone on constant `inputs` (None for omitted ones) in tract and returns its
/// outputs in order (one per present output). The node is copied into a one-node model
/// with the given opset imports; its subgraphs are not supported.
pub fn eval_node(
    node: &Node,
    inputs: &[Option<&Tensor>],
    outputs: usize,
    opsets: &[OpsetImport],
) -> Result<Vec<Tensor>, EvalError> {
    let label = format!("node '{}' ({})", node.label(), node.op());
    let mut g = Graph::new();
    let ins = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.map(|t| {
                let v = g.intern(&format!("in{i}"));
                let mut t = t.clone();
                t.name = Some(format!("in{i}"));
                g.set_initializer(v, t);
                v
            })
        })
        .collect();
    let outs: Vec<_> = (0..outputs)
        .map(|i| Some(g.intern(&format!("out{i}"))))
        .collect();
    let mut bare = Node::new(node.op());
    bare.domain = node.domain.clone();
    bare.attributes = node.attributes.clone();
    g.add_node(bare, ins, outs.clone())
        .map_err(|e| EvalError::Load {
            runtime: "tract",
            model: label.clone(),
            reason: e.to_string(),
        })?;
    for v in outs.into_iter().flatten() {
        g.push_output(v);
    }
    let model = Model {
        ir_version: Some(8),
        opset_imports: opsets.to_vec(),
        graph: g,
        has_graph: true,
        ..Model::default()
    };
    run_model(&model, &label, &[])
}
