//! Structured pruning (`whittle optimize --prune conv,dense,ffn --budget ...`): whole
//! output channels of a layer — Conv filters, dense neurons, transformer FFN neurons —
//! are removed together with the matching input channels of the layer that reads them,
//! and that layer is refit by least squares on the data so its outputs stay as close as
//! they can. The layers left are dense and simply smaller, so every runtime gets faster.
//! Lossy and opt-in.
//!
//! Steps: find the groups ([`group`], through the per-channel [`region`]), gather the
//! consumers' input statistics (shared with decomposition), rank channels and refit per
//! candidate size ([`select`]), choose a size per group against the budget (the search
//! decomposition uses, [`crate::allocate`]), rewrite ([`emit`]) and report.

mod crossval;
pub mod emit;
pub mod group;
pub mod heads;
mod heads_walk;
mod measure;
pub mod region;
pub mod select;

use crate::budget::ErrorBudget;
use crate::decompose::layer::{self, Layer};
use crate::decompose::{DecomposeError, stats};
use group::Group;
use select::{ConsumerFit, Refitted};
use thiserror::Error;
use whittle_eval::{EvalError, Score};
use whittle_ir::{IrError, Model};
use whittle_passes::pass::{Grant, PassCx};

/// What is pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Conv output channels (filters).
    Conv,
    /// Neurons of a dense layer on 2-D activations (Gemm, MatMul).
    Dense,
    /// Transformer FFN neurons: a MatMul on 3-D (or higher) activations.
    Ffn,
    /// Attention heads: blocks of query, key and value columns and the output
    /// projection's matching rows.
    Heads,
}

impl Kind {
    /// The names `--prune` accepts.
    pub const NAMES: &'static [&'static str] = &["conv", "dense", "ffn", "heads"];

    /// Parses one `--prune` name.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "conv" => Some(Kind::Conv),
            "dense" => Some(Kind::Dense),
            "ffn" => Some(Kind::Ffn),
            "heads" => Some(Kind::Heads),
            _ => None,
        }
    }

    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Conv => "conv",
            Kind::Dense => "dense",
            Kind::Ffn => "ffn",
            Kind::Heads => "heads",
        }
    }

    /// The rule name in logs and `--exclude rule:NAME`.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::Conv => "prune-conv",
            Kind::Dense => "prune-dense",
            Kind::Ffn => "prune-ffn",
            Kind::Heads => "prune-heads",
        }
    }
}

/// What to prune and how far.
pub type Options = crate::budget::StepOptions<Kind>;

impl Default for Options {
    fn default() -> Self {
        Options {
            kinds: vec![Kind::Conv, Kind::Dense, Kind::Ffn, Kind::Heads],
            budget: ErrorBudget::Tol(0.1),
            min_gain: 1.1,
            measure: false,
        }
    }
}

/// Why pruning failed (the model is left as it was).
#[derive(Debug, Error)]
pub enum PruneError {
    #[error("prune: {0}")]
    Eval(#[from] EvalError),
    #[error("prune: {0}")]
    Ir(#[from] IrError),
    #[error("{0}")]
    Stats(#[from] DecomposeError),
    #[error("prune: {0}")]
    Data(String),
}

/// One candidate size of a group.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The consumer's refit.
    pub refit: Refitted,
    /// The refits of the group's further readers (fan-out), in order.
    pub more: Vec<Refitted>,
    /// MACs per sample and weight elements of producer + consumer after.
    pub macs: u64,
    pub params: u64,
}

impl Candidate {
    /// The largest predicted relative output error among the readers.
    pub fn error(&self) -> f64 {
        self.more
            .iter()
            .map(|r| r.error)
            .fold(self.refit.error, f64::max)
    }
}

/// A group with its refit consumer per candidate size.
#[derive(Clone, Debug)]
pub struct Site {
    pub group: Group,
    pub candidates: Vec<Candidate>,
    pub macs: u64,
    pub params: u64,
    /// Why there is no candidate (when there is none).
    pub none: String,
    /// The ridge coefficient chosen on held-back sets (None: the fixed one).
    pub ridge: Option<f64>,
}

/// What happened to one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupReport {
    pub site: String,
    pub consumer: String,
    pub kind: Option<Kind>,
    pub kept: usize,
    pub total: usize,
    pub macs_before: u64,
    pub macs_after: u64,
    pub params_before: u64,
    pub params_after: u64,
    /// Predicted relative output error of the consumer after its refit.
    pub error: f64,
    /// The refit's ridge coefficient when it was chosen on held-back sets.
    pub ridge: Option<f64>,
    /// tract milliseconds of the group's layers before and after, with `--measure`.
    pub latency: Option<(f64, f64)>,
    pub why: String,
}

/// What a pruning did.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneReport {
    pub budget: ErrorBudget,
    pub data: String,
    pub groups: Vec<GroupReport>,
    /// Conv/MatMul/Gemm MACs per sample of the whole model, before and after.
    pub macs_before: u64,
    pub macs_after: u64,
    pub score: Option<Score>,
    pub evaluations: usize,
}

mod report;
mod run;
pub use run::prune;

/// The layer list the groups index into.
pub(crate) fn layers_of(model: &Model, cx: &PassCx) -> Vec<Layer> {
    layer::find(&model.graph, cx)
}

/// Channels a kept count should be a multiple of, for `c` channels of `unit` entries
/// each: runtimes block channels by 8 (ONNX Runtime's NCHWc convolutions on AVX2, SIMD
/// widths of dense kernels), and a width off the block sends ORT back to plain layout
/// with reorders around the layer (measured: fire_digits pruned to 7 of 8 squeeze
/// channels ran slower than unpruned). Layers under 16 entries wide step by 4 (8 or
/// more) or 1; a head of 8 or more entries is aligned by itself.
pub fn alignment(c: usize, unit: usize) -> usize {
    let width = c * unit.max(1);
    let block = match width {
        16.. => 8,
        8..16 => 4,
        _ => 1,
    };
    block / gcd(block, unit.max(1))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Candidate channel counts for `c` channels of `unit` entries: a ladder of fractions,
/// rounded down to the [`alignment`], plus the count of channels that carry anything
/// (`live`: dropping only dead channels is exact, so it is offered as it is).
pub fn candidate_sizes(c: usize, unit: usize, live: usize) -> Vec<usize> {
    let align = alignment(c, unit);
    let mut out: Vec<usize> = [15, 14, 12, 10, 8, 6, 4, 3, 2]
        .iter()
        .map(|f| (c * f / 16 / align * align).max(align.min(c)))
        .chain(std::iter::once(live.max(1)))
        .filter(|k| *k < c && *k > 0)
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.dedup();
    out
}

fn grant(cx: &mut PassCx, kind: Kind, site: &str) -> bool {
    matches!(cx.grant("prune", kind.rule(), site), Grant::Yes)
}

/// Statistics of the consumers' inputs on `sets` (geometry of every layer set on the
/// way).
fn gather(
    runtime: &whittle_eval::Runtime,
    model: &Model,
    layers: &mut [Layer],
    sets: &[Vec<whittle_ir::Tensor>],
) -> Result<Vec<stats::LayerStats>, PruneError> {
    Ok(stats::gather(runtime, model, layers, sets, true)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_aligned_and_below_the_count() {
        assert_eq!(
            candidate_sizes(256, 1, 256),
            vec![240, 224, 192, 160, 128, 96, 64, 48, 32]
        );
        // 16 channels step by 8; the live count (10) is offered as it is.
        assert_eq!(candidate_sizes(16, 1, 16), vec![8]);
        assert_eq!(candidate_sizes(16, 1, 10), vec![10, 8]);
        assert_eq!(candidate_sizes(8, 1, 8), vec![4]);
        assert_eq!(candidate_sizes(3, 1, 3), vec![2, 1]);
        assert!(candidate_sizes(1, 1, 1).is_empty());
        // Heads of 32 entries: any count of heads keeps the width a multiple of 8.
        assert_eq!(
            candidate_sizes(12, 32, 12),
            vec![11, 10, 9, 7, 6, 4, 3, 2, 1]
        );
        assert_eq!(alignment(12, 32), 1);
        assert_eq!(alignment(12, 2), 4);
    }
}
