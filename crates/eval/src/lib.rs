//! The runtimes' bridge. Runs ONNX models on IR tensors in tract (embedded) or ONNX
//! Runtime (loaded at run time), so that a rewritten model can be checked, judged and
//! timed against its original on the same inputs, and evaluates single nodes in tract for
//! constant folding. tract and the `ort` crate are only used here.

pub mod bounds;
mod calibration;
mod compare;
mod data;
mod inputs;
mod judge;
mod node;
mod ort_lib;
mod ort_run;
mod probe;
mod run;
mod runtime;
mod sets;

pub use calibration::{
    Split, calibration_sets, calibration_split, feed_names, random_sets, seeded_sets,
    spread_seeded, spread_sets,
};
pub use compare::{OutputDiff, Tolerance, compare_output};
pub use data::read_input_sets;
pub use inputs::{InputSpec, random_inputs};
pub use judge::{Judge, Score};
pub use node::{TractNodes, eval_node};
pub use ort_lib::{MIN_ORT_VERSION, OrtLib, OrtLibError, find_library, load_ort};
pub use probe::probe;
pub use run::{EvalError, run_model, run_model_file};
pub use runtime::{Runner, Runtime, RuntimeChoice};
