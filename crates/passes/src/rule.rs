//! Rules: local rewrites anchored at one node, and [`RuleSet`], the pass that drives them.
//!
//! A rule is written in two halves, so that every rule checks its guards before it
//! touches anything: [`Rule::find`] looks at the graph (read-only) and either declines or
//! returns a [`Patch`], a closure holding what it matched; the driver then asks the
//! rewrite budget (`--bisect-limit`) and applies the patch. Rewrites are logged by rule and
//! node for the report and for bisecting.

use crate::pass::{Grant, Pass, PassCx, PassError, anchor};
use whittle_ir::evaluate::NodeEvaluator;
use whittle_ir::infer::Inference;
use whittle_ir::{Graph, IrError, NodeId, OpsetImport};

/// A matched rewrite, ready to apply.
pub type Patch = Box<dyn FnOnce(&mut Graph) -> Result<(), IrError>>;

/// What a rule may consult besides the graph.
pub struct RuleCx<'a> {
    /// Default-domain opset of the model.
    pub opset: i64,
    /// Facts of the graph being rewritten (the main graph or an `If` branch; None in
    /// Loop and Scan bodies, whose carried values inference sees only once).
    pub facts: Option<&'a Inference>,
    /// Largest constant (bytes) folding may create (`--fold-limit`).
    pub fold_limit: u64,
    /// True inside If/Loop/Scan bodies.
    pub is_subgraph: bool,
    /// Whether this graph may hold initializers (subgraphs may not before IR version 4).
    pub initializers: bool,
    /// The model's opset imports.
    pub opsets: &'a [OpsetImport],
    /// What to evaluate nodes with (`PassSettings::evaluator`).
    pub evaluator: Option<&'a dyn NodeEvaluator>,
}

/// A local rewrite.
pub trait Rule {
    /// Kebab-case name, shown in reports and logs.
    fn name(&self) -> &'static str;
    /// Checks the guards at node `n`; None leaves the graph alone.
    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch>;
    /// False for a rewrite measured slower in some runtime (docs/benchmarks.md): it runs
    /// only where `--enable rule:NAME` asks for it.
    fn default_on(&self) -> bool {
        true
    }
    /// True for a rule that evaluates nodes (`RuleCx::evaluator`): its pass refuses to
    /// run without one rather than do nothing.
    fn evaluates(&self) -> bool {
        false
    }
}

/// A pass made of rules, tried in order at every node (topological order), to a fixed
/// point within the pass.
pub struct RuleSet {
    pub name: &'static str,
    pub description: &'static str,
    pub rules: Vec<Box<dyn Rule>>,
}

impl Pass for RuleSet {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        let active: Vec<&dyn Rule> = self
            .rules
            .iter()
            .filter(|r| r.default_on() || cx.enables(r.name()))
            .map(|r| r.as_ref())
            .collect();
        if active.iter().any(|r| r.evaluates()) && cx.settings.evaluator.get().is_none() {
            return Err(PassError::NoEvaluator { pass: self.name });
        }
        sweep(self.name, g, is_subgraph, cx, 8, &|g, n, rcx, denied| {
            active
                .iter()
                .filter(|r| !denied(r.name()))
                .find_map(|r| r.find(g, n, rcx).map(|p| (r.name(), p, None)))
        })
    }
}

/// A matched lossy rewrite: the patch, and what it costs (a line for the report).
pub struct Costed {
    pub patch: Patch,
    pub note: String,
}

/// A local lossy rewrite (a quantization of one weight): guards first, then a patch with
/// its cost, exactly as a [`Rule`]; the framework asks the budget, applies the patch and
/// logs the rewrite and its note together.
pub trait LossyRule {
    /// Kebab-case name, shown in reports and logs (and named by `--exclude rule:`).
    fn name(&self) -> &'static str;
    /// Checks the guards at node `n` and computes the encoding; None leaves it alone.
    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Costed>;
}

/// Runs one lossy rule over `g` as pass `pass`: a single sweep, since a lossy encoding
/// must never be rewritten again.
pub fn run_lossy(
    pass: &'static str,
    rule: &dyn LossyRule,
    g: &mut Graph,
    is_subgraph: bool,
    cx: &mut PassCx,
) -> Result<bool, PassError> {
    sweep(pass, g, is_subgraph, cx, 1, &|g, n, rcx, denied| {
        if denied(rule.name()) {
            return None;
        }
        rule.find(g, n, rcx)
            .map(|c| (rule.name(), c.patch, Some(c.note)))
    })
}

/// What a sweep found at one node: the rule, its patch and the rewrite's note.
type Found = (&'static str, Patch, Option<String>);

/// Asks the rules at one node (given which rule names are denied there) for a rewrite.
type Finder<'a> = &'a dyn Fn(&Graph, NodeId, &RuleCx, &dyn Fn(&str) -> bool) -> Option<Found>;

/// The one rewrite loop: visits the nodes of `g` in topological order, asks `find` (given
/// which rules are denied at the node) for a rewrite, asks [`PassCx::grant`], applies it
/// and logs it; up to `sweeps` sweeps, until one changes nothing. Nodes of an excluded op
/// (`--exclude op:TYPE`) are never anchors; a subgraph sees the facts of its own scope
/// (`PassCx::scope_facts`).
fn sweep(
    pass: &'static str,
    g: &mut Graph,
    is_subgraph: bool,
    cx: &mut PassCx,
    sweeps: usize,
    find: Finder,
) -> Result<bool, PassError> {
    let err = |source| PassError::Ir { pass, source };
    let mut changed = false;
    for _sweep in 0..sweeps {
        let mut swept = false;
        for n in g.nodes_in_order().map_err(err)? {
            if !g.contains_node(n) || cx.denies_op(g.node(n).op()) {
                continue;
            }
            let at = anchor(g, n);
            let found = {
                let rcx = RuleCx {
                    opset: cx.opset,
                    facts: cx.scope_facts(),
                    fold_limit: cx.settings.fold_limit,
                    is_subgraph,
                    initializers: !is_subgraph || cx.subgraph_initializers,
                    opsets: &cx.opsets,
                    evaluator: cx.settings.evaluator.get(),
                };
                find(g, n, &rcx, &|rule| cx.denies(rule, &at))
            };
            let Some((rule, patch, note)) = found else {
                continue;
            };
            match cx.grant(pass, rule, &at) {
                Grant::Yes => {}
                Grant::Denied => continue,
                Grant::Spent => return Ok(changed),
            }
            cx.begin_edit(g);
            let applied = patch(g);
            cx.end_edit(g);
            applied.map_err(|source| PassError::Rule {
                pass,
                rule,
                node: at.clone(),
                source: Box::new(source),
            })?;
            tracing::debug!(pass, rule, node = %at, "rewrite");
            if let Some(note) = note {
                cx.journal.notes.push((at, note));
            }
            changed = true;
            swept = true;
        }
        if !swept {
            break;
        }
    }
    Ok(changed)
}
