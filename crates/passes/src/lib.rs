//! whittle's rewrite passes.
//!
//! A [`Pass`] rewrites one graph; the [`pipeline`] module picks passes per optimization
//! level and runs them over the main graph and every subgraph, to a fixed point. Each
//! family lives in its own folder (`cleanup/` so far); each pass in its own file.

pub mod cleanup;
pub mod pass;
pub mod pipeline;

pub use pass::{Pass, PassCx, PassError};
pub use pipeline::{Level, PassStat, Pipeline};
