//! whittle's graph rewriting: passes that keep every output (and the framework the lossy
//! passes of `whittle-compress` plug into).
//!
//! A [`Pass`] rewrites one graph; the [`pipeline`] module picks passes per optimization
//! level and runs them over the main graph and every subgraph, to a fixed point. Each
//! family lives in its own folder (`cleanup/`, `fold/`, `fuse/`); one rule family per file.
//! Local rewrites are [`Rule`]s (guards, then a patch) grouped into [`RuleSet`] passes.

pub mod bisect;
pub mod cleanup;
pub mod edit;
pub mod fold;
pub mod fuse;
pub mod guard;
pub mod opset;
pub mod pass;
pub mod pipeline;
pub mod rule;

pub use pass::{DEFAULT_FOLD_LIMIT, Grant, Journal, Pass, PassCx, PassError, PassSettings, anchor};
pub use pipeline::{Level, PassStat, Pipeline};
pub use rule::{Costed, LossyRule, Patch, Rule, RuleCx, RuleSet, run_lossy};
