//! The tract bridge. Runs ONNX models in tract on IR tensors, so that a rewritten model
//! can be checked against its original on the same inputs, and evaluates single nodes for
//! constant folding. tract is only linked here.

mod calibration;
mod compare;
mod data;
mod inputs;
mod judge;
mod node;
mod probe;
mod run;
mod sets;

pub use calibration::{calibration_sets, feed_names, random_sets, seeded_sets, spread_sets};
pub use compare::{OutputDiff, Tolerance, compare_output};
pub use data::read_input_sets;
pub use inputs::{InputSpec, random_inputs};
pub use judge::{Judge, Score};
pub use node::eval_node;
pub use probe::probe;
pub use run::{EvalError, Runner, run_model, run_model_file};
