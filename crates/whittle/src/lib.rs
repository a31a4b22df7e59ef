//! whittle as a library: make exported ONNX models smaller and faster without changing
//! their answers, from Rust code or a build script.
//!
//! ```
//! use whittle::{Level, Optimizer};
//!
//! # fn main() -> Result<(), whittle::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let input = whittle_testkit::fixture("bert_tiny.ts.onnx");
//! # let output = dir.path().join("bert_tiny.opt.onnx");
//! let report = Optimizer::new()
//!     .level(Level::O2)
//!     .input_shape("input_ids", &[1, 16])
//!     .optimize_file(&input, &output)?;
//! assert!(report.nodes_after < report.nodes_before);
//! println!("{} -> {} nodes", report.nodes_before, report.nodes_after);
//! # Ok(())
//! # }
//! ```
//!
//! In `build.rs`, [`build::optimize`] writes the optimized model into `OUT_DIR`, tells
//! cargo which files to watch, and skips the work when nothing changed.

pub mod build;
pub mod certificate;
pub mod certify_eval;
pub mod config;
pub mod job;
mod modes;
mod optimizer;
mod report;
mod session;
pub mod settings;
mod steps;
mod summary;
pub mod tune;
pub mod verified;

pub use config::{Config, Settings};
pub use modes::{
    BlockSize, DynamicOp, Fp16, Fp16Weights, Int4, Int8Dynamic, Int8Form, Int8Static, Int8Weights,
    Quantize,
};
pub use optimizer::{Error, Optimizer};
pub use report::{LossyCheck, PassReport, Report, Rewrite, Verification};
pub use session::{Observer, RunOptions, Verify};
pub use summary::Summary;
pub use whittle_ir::Model;
pub use whittle_passes::Level;

/// The IR, for callers that edit or inspect graphs.
pub use whittle_ir as ir;
