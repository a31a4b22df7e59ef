//! The tract bridge. Runs ONNX models in tract on IR tensors, so that a rewritten model
//! can be checked against its original on the same inputs, and evaluates single nodes for
//! constant folding. tract is only linked here.

mod inputs;
mod node;
mod run;

pub use inputs::{InputSpec, random_inputs};
pub use node::eval_node;
pub use run::{EvalError, run_model, run_model_file};
