//! Rules: local rewrites anchored at one node, and [`RuleSet`], the pass that drives them.
//!
//! A rule is written in two halves, so that every rule checks its guards before it
//! touches anything: [`Rule::find`] looks at the graph (read-only) and either declines or
//! returns a [`Patch`], a closure holding what it matched; the driver then asks the
//! rewrite budget (`--bisect-limit`) and applies the patch. Rewrites are logged by rule and
//! node for the report and for bisecting.

use crate::pass::{Grant, Pass, PassCx, PassError, site};
use whittle_ir::infer::Inference;
use whittle_ir::{Graph, IrError, NodeId, OpsetImport};

/// A matched rewrite, ready to apply.
pub type Patch = Box<dyn FnOnce(&mut Graph) -> Result<(), IrError>>;

/// What a rule may consult besides the graph.
pub struct RuleCx<'a> {
    /// Default-domain opset of the model.
    pub opset: i64,
    /// Facts of the main graph (None inside subgraphs, whose value ids differ).
    pub facts: Option<&'a Inference>,
    /// Largest constant (bytes) folding may create (`--fold-limit`).
    pub fold_limit: u64,
    /// True inside If/Loop/Scan bodies.
    pub is_subgraph: bool,
    /// The model's opset imports.
    pub opsets: &'a [OpsetImport],
}

/// A local rewrite.
pub trait Rule {
    /// Kebab-case name, shown in reports and logs.
    fn name(&self) -> &'static str;
    /// Checks the guards at node `n`; None leaves the graph alone.
    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch>;
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
        let err = |source| PassError::Ir {
            pass: self.name,
            source,
        };
        let mut changed = false;
        for _sweep in 0..8 {
            let mut swept = false;
            for n in g.nodes_in_order().map_err(err)? {
                if !g.contains_node(n) {
                    continue;
                }
                let rcx = RuleCx {
                    opset: cx.opset,
                    facts: if is_subgraph { None } else { cx.facts.as_ref() },
                    fold_limit: cx.fold_limit,
                    is_subgraph,
                    opsets: &cx.opsets,
                };
                if cx.deny_ops.iter().any(|o| o == g.node(n).op()) {
                    continue;
                }
                let at = site(g, n);
                let denied = |r: &dyn Rule| cx.denies(r.name(), &at);
                let Some((rule, patch)) = self
                    .rules
                    .iter()
                    .filter(|r| !denied(r.as_ref()))
                    .find_map(|r| r.find(g, n, &rcx).map(|p| (r.name(), p)))
                else {
                    continue;
                };
                match cx.grant(self.name, rule, &at) {
                    Grant::Yes => {}
                    Grant::Denied => continue,
                    Grant::Spent => return Ok(changed),
                }
                patch(g).map_err(err)?;
                tracing::debug!(pass = self.name, rule, node = %at, "rewrite");
                changed = true;
                swept = true;
            }
            if !swept {
                break;
            }
        }
        Ok(changed)
    }
}
