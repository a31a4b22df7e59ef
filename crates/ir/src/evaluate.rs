//! Evaluating one node on constant inputs: the interface constant folding uses, so that
//! the pass library rewrites graphs without running models itself. whittle's
//! implementation is tract's (`whittle_eval::TractNodes`); the driver hands it to the
//! passes through their settings.

use crate::meta::OpsetImport;
use crate::node::Node;
use crate::tensor::Tensor;
use std::fmt;
use std::sync::Arc;

/// Something that can run one node on constant inputs.
pub trait NodeEvaluator: Send + Sync {
    /// Runs `node` alone on `inputs` (None for omitted ones) under the model's `opsets`
    /// and returns its `outputs` results in order, or why it could not.
    fn eval_node(
        &self,
        node: &Node,
        inputs: &[Option<&Tensor>],
        outputs: usize,
        opsets: &[OpsetImport],
    ) -> Result<Vec<Tensor>, String>;
}

/// A shared evaluator, or none (then nothing that needs one can run).
#[derive(Clone, Default)]
pub struct Evaluator(Option<Arc<dyn NodeEvaluator>>);

impl Evaluator {
    /// Wraps `e`.
    pub fn new(e: impl NodeEvaluator + 'static) -> Evaluator {
        Evaluator(Some(Arc::new(e)))
    }

    /// The evaluator, when there is one.
    pub fn get(&self) -> Option<&dyn NodeEvaluator> {
        self.0.as_deref()
    }
}

impl fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Evaluator(set)"
        } else {
            "Evaluator(none)"
        })
    }
}
