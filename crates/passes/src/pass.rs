//! The pass interface.

use thiserror::Error;
use whittle_certify::record::Region;
use whittle_ir::Phase;
use whittle_ir::evaluate::Evaluator;
use whittle_ir::infer::{Inference, ScopeStep};
use whittle_ir::{Dim, Graph, IrError, OpsetImport};

/// A pass failed; the model is left as it was before the pass.
#[derive(Debug, Error)]
pub enum PassError {
    #[error("pass '{pass}': {source}")]
    Ir { pass: &'static str, source: IrError },
    /// A rule's patch failed: which pass, which rule, at which node.
    #[error("pass '{pass}', rule '{rule}' at '{node}': {source}")]
    Rule {
        pass: &'static str,
        rule: &'static str,
        node: String,
        source: Box<IrError>,
    },
    #[error("{0}")]
    Infer(#[from] whittle_ir::infer::InferError),
    /// A pass that evaluates nodes ran without an evaluator in its settings.
    #[error("pass '{pass}' evaluates nodes, and no evaluator was given (PassSettings::evaluator)")]
    NoEvaluator { pass: &'static str },
    /// A pass asked to run where its phase does not allow it.
    #[error("pass '{pass}' ({}) cannot run {why}", phase.name())]
    Phase {
        pass: &'static str,
        phase: Phase,
        why: String,
    },
}

/// Default `--fold-limit`: folded constants larger than this (and larger than what they
/// replace) are not materialised.
pub const DEFAULT_FOLD_LIMIT: u64 = 1 << 20;

/// What the user asked of a run: fixed while it runs (a repeated run of the same plan
/// starts from the same settings).
#[derive(Clone, Debug)]
pub struct PassSettings {
    /// Dims fixed by `--input-shape` (inference binds them before every pass).
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Largest constant folding may create, in bytes (`--fold-limit`).
    pub fold_limit: u64,
    /// Rewrites not to do: (rule, site) pairs rolled back by `optimize --verify` or
    /// excluded by the user; `*` in either place matches anything.
    pub deny: Vec<(String, String)>,
    /// Op types no rewrite may be anchored at (`--exclude op:Type`).
    pub deny_ops: Vec<String>,
    /// Rules that are off by default and asked for (`--enable rule:NAME`).
    pub enable: Vec<String>,
    /// Rewrites allowed in the whole run (`--bisect-limit`); None = unlimited.
    pub rewrite_limit: Option<usize>,
    /// What constant folding evaluates nodes with (whittle's driver sets tract's,
    /// `whittle_eval::TractNodes`). Without one, a pass that folds is an error.
    pub evaluator: Evaluator,
    /// Record the region each rewrite changes, for a certificate (`--certificate`).
    pub record_edits: bool,
}

impl Default for PassSettings {
    fn default() -> Self {
        PassSettings {
            input_shapes: Vec::new(),
            fold_limit: DEFAULT_FOLD_LIMIT,
            deny: Vec::new(),
            deny_ops: Vec::new(),
            enable: Vec::new(),
            rewrite_limit: None,
            evaluator: Evaluator::default(),
            record_edits: false,
        }
    }
}

/// What a run did, in order: every rewrite and what lossy rewrites measured.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    /// Every rewrite done: (pass, rule, node). "Rewrite k" is its k-th entry, for
    /// `--bisect-limit` and `--verify`.
    pub log: Vec<(&'static str, &'static str, String)>,
    /// What lossy passes measured per site (node, text), for the report.
    pub notes: Vec<(String, String)>,
    /// With `PassSettings::record_edits`: the region each rewrite changed, by log index
    /// (rewrites of passes that do not record have none).
    pub regions: Vec<(usize, Region)>,
}

/// What passes share while they run: the settings, the journal, the rewrites still
/// allowed, and the view of the model the driver refreshes before each pass.
#[derive(Clone, Debug)]
pub struct PassCx {
    pub settings: PassSettings,
    pub journal: Journal,
    /// Rewrites still allowed (starts at `settings.rewrite_limit`); None = unlimited.
    pub remaining: Option<usize>,
    /// Rewrites done by the current pass (reset by the pipeline).
    pub rewrites: usize,
    /// The model's default-domain opset (rules that depend on op versions read it).
    pub opset: i64,
    /// The model's opset imports (folding evaluates nodes in one-node models).
    pub opsets: Vec<OpsetImport>,
    /// Inferred facts of the main graph and of its `If` branches, refreshed by the
    /// pipeline before each pass.
    pub facts: Option<Inference>,
    /// The subgraph being rewritten, as steps from the main graph (empty: the main graph).
    pub scope: Vec<ScopeStep>,
    /// The same steps as certificates name them (`holder-output:attribute:index`).
    pub scope_names: Vec<String>,
    /// True while a lossy pass runs (its regions are marked lossy in a certificate).
    pub lossy: bool,
    /// False before IR version 4, where every initializer must also be a graph input:
    /// subgraphs then get no initializers (an `If` branch has no inputs).
    pub subgraph_initializers: bool,
}

/// The answer to a request to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Go ahead (the rewrite is logged).
    Yes,
    /// Not this one (rolled back earlier); others may go on.
    Denied,
    /// The budget is spent: the pass must stop.
    Spent,
}

/// The node a rewrite is anchored at, as logs, roll-back and `--exclude node:NAME` name
/// it: the node's name, or for unnamed nodes the op and first output
/// (`<unnamed Relu> -> y`).
pub fn anchor(g: &Graph, n: whittle_ir::NodeId) -> String {
    let node = g.node(n);
    match (&node.name, node.output(0)) {
        (Some(name), _) if !name.is_empty() => name.clone(),
        (_, Some(v)) => format!("{} -> {}", node.label(), g.value(v).name()),
        _ => node.label(),
    }
}

impl Default for PassCx {
    fn default() -> Self {
        PassCx::new(PassSettings::default())
    }
}

impl PassCx {
    /// A context for a run with `settings` and an empty journal.
    pub fn new(settings: PassSettings) -> PassCx {
        PassCx {
            remaining: settings.rewrite_limit,
            settings,
            journal: Journal::default(),
            rewrites: 0,
            opset: 0,
            opsets: Vec::new(),
            facts: None,
            scope: Vec::new(),
            scope_names: Vec::new(),
            lossy: false,
            subgraph_initializers: true,
        }
    }

    /// A context with the same settings and an empty journal: what a repeated run of
    /// the same plan starts from.
    pub fn fresh(&self) -> PassCx {
        PassCx::new(self.settings.clone())
    }

    /// The facts of the graph being rewritten: the main graph's, or an `If` branch's
    /// where subgraphs may hold the constants that rules derive from them.
    pub fn scope_facts(&self) -> Option<&Inference> {
        let facts = self.facts.as_ref()?;
        if !self.scope.is_empty() && !self.subgraph_initializers {
            return None;
        }
        facts.within(&self.scope)
    }

    /// With a certificate asked for, starts recording what the rewrite just granted
    /// changes in `g`.
    pub fn begin_edit(&self, g: &mut Graph) {
        if self.settings.record_edits {
            g.start_recording();
        }
    }

    /// Ends the recording [`PassCx::begin_edit`] started: the region goes to the
    /// journal beside the rewrite's log entry.
    pub fn end_edit(&mut self, g: &mut Graph) {
        if let Some(edit) = g.finish_recording() {
            let at = self.journal.log.len().saturating_sub(1);
            let mut region = Region::of_edit(&edit, self.scope_names.clone());
            region.lossy = self.lossy;
            self.journal.regions.push((at, region));
        }
    }

    /// True when no rewrite may be anchored at a node of `op` (`--exclude op:TYPE`).
    pub fn denies_op(&self, op: &str) -> bool {
        self.settings.deny_ops.iter().any(|o| o == op)
    }

    /// True when `rule` was asked for by `--enable rule:NAME`.
    pub fn enables(&self, rule: &str) -> bool {
        self.settings.enable.iter().any(|r| r == rule)
    }

    /// Asks to perform one rewrite: false when the rewrite limit is spent (the pass must
    /// then leave the graph alone).
    pub fn allow(&mut self) -> bool {
        match &mut self.remaining {
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                self.rewrites += 1;
                true
            }
            None => {
                self.rewrites += 1;
                true
            }
        }
    }

    /// True when `rule` may not rewrite at `site`.
    pub fn denies(&self, rule: &str, site: &str) -> bool {
        self.settings
            .deny
            .iter()
            .any(|(r, s)| (r == rule || r == "*") && (s == site || s == "*"))
    }

    /// Asks to do one rewrite by `rule` of `pass` at `site`: denied sites are refused,
    /// then the rewrite limit decides; granted rewrites are logged.
    pub fn grant(&mut self, pass: &'static str, rule: &'static str, site: &str) -> Grant {
        if self.denies(rule, site) {
            return Grant::Denied;
        }
        if !self.allow() {
            return Grant::Spent;
        }
        self.journal.log.push((pass, rule, site.to_string()));
        Grant::Yes
    }
}

/// A graph rewrite, of the phase [`Pass::phase`] says: lossless passes never change what a
/// model computes; lossy ones run only as steps of the lossy phase, once, through
/// [`crate::Pipeline::once`]; clean-up passes are safe over any encoding.
pub trait Pass {
    /// The kebab-case name users type (`--passes`, `--disable`).
    fn name(&self) -> &'static str;
    /// One line for `--list-passes`.
    fn description(&self) -> &'static str;
    /// The phase the pass belongs to (see [`Phase`]): the pipeline refuses it over a
    /// model that has gone past that phase.
    fn phase(&self) -> Phase {
        Phase::Lossless
    }
    /// Rewrites `g` (one graph; the pipeline visits subgraphs). Returns whether anything
    /// changed. `is_subgraph` tells whether names may come from an enclosing scope.
    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError>;
}
