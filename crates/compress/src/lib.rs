//! whittle's lossy compression: what the steps of the lossy phase run.
//!
//! Quantization (`quant/`: int8 weights, dynamic and static, int4 with GPTQ, fp16),
//! structured pruning (`prune/`), low-rank and depthwise-separable decomposition
//! (`decompose/`), the whole-model budget search they share (`allocate.rs`, `budget.rs`),
//! and one-layer timing for `--measure` (`timing.rs`). These measure the model on data,
//! which is why this crate, and not the graph-rewriting one (`whittle-passes`), depends on
//! the evaluation crate. Their passes are of the lossy phase
//! ([`whittle_ir::Phase::Lossy`]) and run once, as steps, never in a lossless pipeline.

pub mod allocate;
pub mod budget;
pub mod decompose;
pub mod prune;
pub mod quant;
pub mod timing;
pub mod weighted;

pub use budget::{ErrorBudget, StepOptions};
