//! What an optimization did, as data.

pub use crate::verified::Verification;
use std::time::Duration;
use whittle_compress::ErrorBudget;
use whittle_eval::Score;

/// One pass's work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassReport {
    pub name: &'static str,
    pub rewrites: usize,
    /// Time spent in the pass over the whole run.
    pub time: Duration,
}

/// How the lossy steps' result compares with the original on the verification inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct LossyCheck {
    /// Mean cosine, top-1 agreement and relative error against the original.
    pub score: Score,
    /// The budget it was held to (none: reported only).
    pub budget: Option<ErrorBudget>,
    /// Whether the score meets the budget (true without one).
    pub held: bool,
}

/// One rewrite: which pass and rule, at which node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub pass: &'static str,
    pub rule: &'static str,
    pub node: String,
}

/// The result of [`crate::Optimizer`]: counts before and after, and every rewrite.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Nodes of the main graph and its subgraphs.
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Stored bytes of all initializers.
    pub initializer_bytes_before: u64,
    pub initializer_bytes_after: u64,
    pub passes: Vec<PassReport>,
    pub rewrites: Vec<Rewrite>,
    /// What lossy passes measured, per node: (node, e.g. "int8 w [64, 32]: relative
    /// weight error 3.1e-3").
    pub notes: Vec<(String, String)>,
    /// What decomposition did, per layer and in total (when it ran).
    pub decompose: Option<whittle_compress::decompose::DecomposeReport>,
    /// What pruning did, when it ran.
    pub prune: Option<whittle_compress::prune::PruneReport>,
    /// What verification of the lossless phase found and rolled back (with verify).
    pub verification: Option<Verification>,
    /// The lossy steps judged on the verification inputs (with verify and a lossy step).
    pub lossy: Option<LossyCheck>,
    /// The runtime that verified, judged and calibrated (None when nothing ran the model).
    pub runtime: Option<String>,
    /// With `RunOptions::record_edits`: the region each rewrite changed, by index into
    /// `rewrites` (a certificate's content).
    pub regions: Vec<(usize, whittle_certify::record::Region)>,
}

/// Nodes (subgraphs included) and initializer bytes of a model.
pub(crate) fn size(m: &whittle_ir::Model) -> (usize, u64) {
    fn walk(g: &whittle_ir::Graph, acc: &mut (usize, u64)) {
        acc.0 += g.node_count();
        for v in g.initializers() {
            if let Some(t) = g.value(*v).initializer() {
                acc.1 += t.stored_bytes();
            }
        }
        for n in g.node_ids() {
            for sub in g.node(n).attributes.iter().flat_map(|a| a.subgraphs()) {
                walk(sub, acc);
            }
        }
    }
    let mut acc = (0, 0);
    walk(&m.graph, &mut acc);
    acc
}
