//! Pipelines: which passes run at each level, and the driver that runs them over a model.

use crate::pass::{Pass, PassCx, PassError};
use crate::rule::RuleSet;
use crate::{cleanup, fold, fuse};
use std::time::{Duration, Instant};
use whittle_ir::infer::{InferOptions, ScopeStep, infer};
use whittle_ir::{Dim, Graph, Model, NodeId, Phase, Type};

/// Optimization level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing: a faithful re-encoding.
    O0,
    /// Clean-up and folding.
    O1,
    /// Clean-up, folding and fusion (the default).
    O2,
}

/// Every pass whittle has, in pipeline order. The comment on each line says why it sits
/// where it does.
pub fn all_passes() -> Vec<Box<dyn Pass>> {
    let set = |name, description, rules| -> Box<dyn Pass> {
        Box::new(RuleSet {
            name,
            description,
            rules,
        })
    };
    vec![
        // Constants as initializers first: every later rule looks for initializers.
        set(
            "constant-nodes",
            "turn Constant nodes into initializers",
            vec![Box::new(cleanup::ConstantToInitializer)],
        ),
        // Control flow decided by constants disappears before anything looks inside it.
        set(
            "inline-if",
            "replace an If with a constant condition by the branch it takes",
            vec![Box::new(cleanup::InlineConstantIf)],
        ),
        // Identity removal exposes producer/consumer pairs to later rules.
        Box::new(cleanup::Identity),
        set(
            "no-op",
            "bypass ops that return their input (Dropout at inference, same-type Cast, x*1, ...)",
            cleanup::noop::rules(),
        ),
        // Shape values before evaluation: free, and it leaves less for tract.
        set(
            "fold-shapes",
            "replace computed shape values (Shape->Gather->Concat...) by constants",
            vec![Box::new(fold::FoldShapes)],
        ),
        // Computed reshape targets proved equal to a constant with 0 and -1: the shape
        // arithmetic feeding them then dies.
        set(
            "fold-reshape-targets",
            "replace computed Reshape targets by constants with 0 (copy) and -1 where inference proves them",
            vec![Box::new(fold::ReshapeTarget)],
        ),
        set(
            "fold-constants",
            "evaluate nodes whose inputs are all constant (tract), within --fold-limit",
            vec![Box::new(fold::FoldConstants)],
        ),
        // Identical constants first, so that nodes reading them become duplicates too.
        Box::new(cleanup::DedupInitializers),
        Box::new(cleanup::Cse),
        // Fusions see folded constants (BN statistics, biases).
        set(
            "fuse",
            "fuse Conv+BN/Add/Mul/Pad, MatMul+Add->Gemm, Transpose/Reshape/Unsqueeze chains, ...",
            fuse::rules(),
        ),
        // Dead code last: earlier passes leave unused nodes and initializers behind.
        Box::new(cleanup::DeadCode),
    ]
}

/// Passes that only fuse (at `-O2`, not `-O1`).
const FUSION: &[&str] = &["fuse"];

/// Whether pass `name` runs at `level` (every lossless pass runs from `-O1`, fusion
/// from `-O2`).
fn in_level(level: Level, name: &str) -> bool {
    match level {
        Level::O0 => false,
        Level::O1 => !FUSION.contains(&name),
        Level::O2 => true,
    }
}

/// What one pass did over the whole run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassStat {
    pub name: &'static str,
    pub rewrites: usize,
    pub time: Duration,
}

/// An ordered list of passes run to a fixed point.
pub struct Pipeline {
    passes: Vec<Box<dyn Pass>>,
    /// Rounds over the whole list before giving up on reaching a fixed point.
    pub max_rounds: usize,
}

impl Pipeline {
    /// The passes of `level`.
    pub fn for_level(level: Level) -> Pipeline {
        let passes = all_passes()
            .into_iter()
            .filter(|p| in_level(level, p.name()))
            .collect();
        Pipeline {
            passes,
            max_rounds: 10,
        }
    }

    /// Exactly the named passes, in pipeline order. Unknown names are an error that lists
    /// the valid ones.
    pub fn with_passes(names: &[String]) -> Result<Pipeline, String> {
        check_names(names)?;
        let passes = all_passes()
            .into_iter()
            .filter(|p| names.iter().any(|n| n == p.name()))
            .collect();
        Ok(Pipeline {
            passes,
            max_rounds: 10,
        })
    }

    /// A pipeline of exactly these passes (tests, custom tools).
    pub fn from_passes(passes: Vec<Box<dyn Pass>>) -> Pipeline {
        Pipeline {
            passes,
            max_rounds: 10,
        }
    }

    /// The passes of a lossy step, each run once in this order (never to a fixed point:
    /// a lossy encoding must not be rewritten again).
    pub fn once(passes: Vec<Box<dyn Pass>>) -> Pipeline {
        Pipeline {
            passes,
            max_rounds: 1,
        }
    }

    /// The final clean-up after lossy steps: only dead code and duplicates go (nothing
    /// here folds or fuses, so no lossy encoding is undone). Duplicates are merged when
    /// the plan's lossless passes (`plan`, their names) merge them; dead code always goes.
    pub fn cleanup(plan: &[&str]) -> Pipeline {
        let mut passes: Vec<Box<dyn Pass>> = Vec::new();
        if plan.contains(&"dedup-initializers") {
            passes.push(Box::new(cleanup::DedupInitializers));
        }
        if plan.contains(&"cse") {
            passes.push(Box::new(cleanup::Cse));
        }
        passes.push(Box::new(cleanup::DeadCode));
        Pipeline {
            passes,
            max_rounds: 10,
        }
    }

    /// Drops the named passes (unknown names are an error).
    pub fn disable(&mut self, names: &[String]) -> Result<(), String> {
        check_names(names)?;
        self.passes.retain(|p| !names.iter().any(|n| n == p.name()));
        Ok(())
    }

    /// Names of the passes that will run.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Runs the passes over the main graph and every subgraph until nothing changes (or
    /// `max_rounds`). Returns what each pass did.
    pub fn run(&self, model: &mut Model, cx: &mut PassCx) -> Result<Vec<PassStat>, PassError> {
        self.run_observed(model, cx, &mut |_, _| {})
    }

    /// Like [`Pipeline::run`], calling `after(pass, model)` after every pass (for
    /// `--print-after`).
    pub fn run_observed(
        &self,
        model: &mut Model,
        cx: &mut PassCx,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<Vec<PassStat>, PassError> {
        cx.opset = model.opset("").unwrap_or(0);
        cx.opsets = model.opset_imports.clone();
        cx.subgraph_initializers = model.ir_version.is_none_or(|v| v >= 4);
        if self.passes.is_empty() {
            return Ok(Vec::new());
        }
        let mut stats: Vec<PassStat> = self
            .passes
            .iter()
            .map(|p| PassStat {
                name: p.name(),
                ..Default::default()
            })
            .collect();
        let mut changing = Vec::new();
        for round in 0..self.max_rounds {
            changing.clear();
            for (pass, stat) in self.passes.iter().zip(stats.iter_mut()) {
                self.check_phase(pass.as_ref(), model)?;
                cx.lossy = pass.phase() == Phase::Lossy;
                let start = Instant::now();
                cx.rewrites = 0;
                let opts = InferOptions {
                    input_shapes: cx.settings.input_shapes.clone(),
                };
                cx.facts = Some(infer(model, &opts)?);
                // Transactional: a pass that fails leaves the model as it was (tensors
                // are shared `Bytes`, so the snapshot copies no weights).
                let snapshot = (model.clone(), cx.journal.log.len(), cx.journal.notes.len());
                let ran =
                    run_on_graph(pass.as_ref(), &mut model.graph, false, cx).and_then(|changed| {
                        match changed {
                            true => check_invariants(pass.name(), model).map(|()| true),
                            false => Ok(false),
                        }
                    });
                match ran {
                    Ok(true) => {
                        changing.push(pass.name());
                        // A model that a pass changed has reached its phase (clean-up
                        // passes run in every phase and move none).
                        if pass.phase() != Phase::Cleanup {
                            model.phase = model.phase.max(pass.phase());
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let (before, log, notes) = snapshot;
                        *model = before;
                        cx.journal.log.truncate(log);
                        cx.journal.notes.truncate(notes);
                        cx.journal.regions.retain(|(k, _)| *k < log);
                        return Err(e);
                    }
                }
                stat.rewrites += cx.rewrites;
                stat.time += start.elapsed();
                after(pass.name(), model);
            }
            if changing.is_empty() {
                tracing::debug!(rounds = round + 1, "fixed point reached");
                break;
            }
        }
        if !changing.is_empty() && self.max_rounds > 1 {
            tracing::warn!(
                "no fixed point after {} rounds; still changing: {}",
                self.max_rounds,
                changing.join(", ")
            );
        }
        list_initializers_as_inputs(model);
        Ok(stats)
    }
}

impl Pipeline {
    /// Refuses `pass` over `model` when the model has gone past the pass's phase (a
    /// lossless pass over a lossy encoding), and a lossy pass in a pipeline that runs
    /// to a fixed point (a lossy encoding must not be rewritten again).
    fn check_phase(&self, pass: &dyn Pass, model: &Model) -> Result<(), PassError> {
        let phase = pass.phase();
        let why = if !model.phase.admits(phase) {
            format!("over a model in the {} phase", model.phase.name())
        } else if phase == Phase::Lossy && self.max_rounds > 1 {
            "to a fixed point: lossy passes run once, as a step (Pipeline::once)".to_string()
        } else {
            return Ok(());
        };
        Err(PassError::Phase {
            pass: pass.name(),
            phase,
            why,
        })
    }
}

/// In debug builds (and so in every test), the IR verifier runs after each pass that
/// changed something, so a pass that breaks an invariant is named at once instead of
/// surfacing as a wrong model later.
fn check_invariants(pass: &'static str, model: &Model) -> Result<(), PassError> {
    if cfg!(debug_assertions) {
        model
            .graph
            .verify(false)
            .map_err(|source| PassError::Ir { pass, source })?;
    }
    Ok(())
}

/// Before IR version 4 every initializer must also be a graph input: passes that create
/// initializers (folding, fusion) list theirs too, typed from the tensor.
fn list_initializers_as_inputs(model: &mut Model) {
    if model.ir_version.is_none_or(|v| v >= 4) {
        return;
    }
    let g = &mut model.graph;
    let missing: Vec<_> = g
        .initializers()
        .iter()
        .copied()
        .filter(|v| !g.inputs().contains(v))
        .collect();
    for v in missing {
        if let Some(t) = g.value(v).initializer() {
            let ty = Type::tensor(t.dtype(), t.dims.iter().map(|d| Dim::Known(*d)));
            g.value_mut(v).info.ty = Some(ty);
            g.push_input(v);
        }
    }
}

fn check_names(names: &[String]) -> Result<(), String> {
    let valid: Vec<&str> = all_passes().iter().map(|p| p.name()).collect();
    match names.iter().find(|n| !valid.contains(&n.as_str())) {
        Some(bad) => Err(format!(
            "unknown pass '{bad}'; valid passes: {}",
            valid.join(", ")
        )),
        None => Ok(()),
    }
}

/// Runs `pass` on the subgraphs of `g` (innermost first), then on `g` itself.
fn run_on_graph(
    pass: &dyn Pass,
    g: &mut Graph,
    is_subgraph: bool,
    cx: &mut PassCx,
) -> Result<bool, PassError> {
    let mut changed = false;
    let holders: Vec<NodeId> = g
        .node_ids()
        .filter(|n| g.node(*n).has_subgraphs())
        .collect();
    for n in holders {
        let mut attrs = std::mem::take(&mut g.node_mut(n).attributes);
        let mut sub_changed = false;
        let holder = g
            .node(n)
            .outputs()
            .first()
            .copied()
            .flatten()
            .map_or(String::new(), |v| g.value(v).name().to_string());
        for a in attrs.iter_mut() {
            let attr = a.name().to_string();
            for (index, sub) in a.subgraphs_mut().enumerate() {
                cx.scope.push(ScopeStep {
                    node: n,
                    attr: attr.clone(),
                    index,
                });
                cx.scope_names.push(format!("{holder}:{attr}:{index}"));
                let ran = run_on_graph(pass, sub, true, cx);
                cx.scope.pop();
                cx.scope_names.pop();
                sub_changed |= ran?;
            }
        }
        g.node_mut(n).attributes = attrs;
        if sub_changed {
            g.capture_outer(n);
            changed = true;
        }
    }
    changed |= pass.run(g, is_subgraph, cx)?;
    Ok(changed)
}
