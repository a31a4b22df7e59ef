//! Shape and type inference with symbolic dims and propagated shape values.
//!
//! [`infer`] walks a model in topological order and gives every value a [`Fact`]: element
//! type, dims (known, symbolic or unknown) and, for small integer tensors such as the
//! output of `Shape`, the values themselves, so `Shape → Gather → Concat → Reshape` chains
//! resolve. Rules live in [`rules`], one file per op family; an op without a rule leaves its
//! outputs unknown and inference goes on. A contradiction (two known dims that differ) is a
//! warning naming the node, never an error. Results are merged into the values' declared
//! types, so they show in `whittle dump` and reach the file only where the graph already
//! declares a value.

mod control;
mod ctx;
mod fact;
mod merge;
pub mod poly;
mod rules;

pub use ctx::Ctx;
pub use fact::Fact;
pub use poly::Poly;
pub use rules::Equation;

use crate::graph::{Graph, NodeId, ValueId};
use crate::model::Model;
use crate::types::{Dim, Type, TypeKind};
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// What the caller fixes before inference.
#[derive(Clone, Debug, Default)]
pub struct InferOptions {
    /// Dims of graph inputs, by input name (`--input-shape name=d0,d1`). Symbols the input
    /// declared at those positions are bound everywhere.
    pub input_shapes: Vec<(String, Vec<Dim>)>,
}

/// A request inference cannot honour.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum InferError {
    #[error("--input-shape names '{0}', which is not an input of the model (inputs: {1})")]
    NoSuchInput(String, String),
    #[error("--input-shape for '{input}' gives {given} dims but the model declares {declared}")]
    RankMismatch {
        input: String,
        given: usize,
        declared: usize,
    },
    #[error("--input-shape binds '{symbol}' to both {a} and {b}")]
    Conflict { symbol: String, a: i64, b: i64 },
}

/// One step from a graph into a subgraph: the node holding it, the attribute, and the
/// graph's position within the attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScopeStep {
    pub node: NodeId,
    pub attr: String,
    pub index: usize,
}

/// The result for the main graph: a fact per value, and what went wrong on the way.
#[derive(Clone, Debug, Default)]
pub struct Inference {
    facts: Vec<Option<Fact>>,
    /// Contradictions and rule failures, each naming its node.
    pub warnings: Vec<String>,
    /// Symbols fixed by `--input-shape`.
    pub bindings: BTreeMap<String, i64>,
    /// Facts of `If` branches reached through `If` branches only, by path from the main
    /// graph. A branch runs with the enclosing values as they are, so what is known
    /// outside holds inside. Loop and Scan bodies are left out: their carried values
    /// change from one iteration to the next, and inference sees only the first.
    branches: HashMap<Vec<ScopeStep>, Inference>,
}

impl Inference {
    /// What is known about `v` of the main graph.
    pub fn fact(&self, v: ValueId) -> Option<&Fact> {
        self.facts.get(v.index()).and_then(|f| f.as_ref())
    }

    /// A branch's facts.
    pub(crate) fn of_facts(facts: Vec<Option<Fact>>) -> Inference {
        Inference {
            facts,
            ..Default::default()
        }
    }

    /// The facts of the `If` branch at `path` (empty: the main graph), when every step
    /// on the way is an `If` branch.
    pub fn within(&self, path: &[ScopeStep]) -> Option<&Inference> {
        if path.is_empty() {
            return Some(self);
        }
        self.branches.get(path)
    }
}

/// Shared state of one inference run across nested graphs.
pub(crate) struct State {
    pub opset: i64,
    pub bindings: BTreeMap<String, i64>,
    pub warnings: Vec<String>,
    pub fresh: u64,
    pub depth: usize,
    /// Before IR version 4 every initializer had to be listed as an input too, and
    /// runtimes treat them as constants; from 4 on an input's initializer is a default
    /// the caller may override, so its values are not assumed.
    pub inputs_constant: bool,
    /// Where inference is: the steps from the main graph, while they are all `If`
    /// branches (None below a Loop or Scan body).
    pub path: Option<Vec<ScopeStep>>,
    /// Facts of the branches met so far, by path.
    pub branches: HashMap<Vec<ScopeStep>, Inference>,
}

/// Nesting past this depth is not inferred (hostile files nest thousands of `If`s).
const MAX_DEPTH: usize = 64;

/// Infers facts for every value of `model` (subgraphs included) and merges them into the
/// declared types.
pub fn infer(model: &mut Model, opts: &InferOptions) -> Result<Inference, InferError> {
    let bindings = bind_inputs(&mut model.graph, opts)?;
    let mut st = State {
        opset: model.opset("").unwrap_or(1),
        bindings,
        warnings: Vec::new(),
        fresh: 0,
        depth: 0,
        inputs_constant: model.ir_version.is_some_and(|v| v < 4),
        path: Some(Vec::new()),
        branches: HashMap::new(),
    };
    let facts = infer_graph(&mut model.graph, &HashMap::new(), &[], &mut st);
    Ok(Inference {
        facts,
        warnings: st.warnings,
        bindings: st.bindings,
        branches: st.branches,
    })
}

/// Applies `--input-shape`: rewrites the inputs' declared dims and returns the symbols
/// their old dims named, bound to the new sizes.
fn bind_inputs(g: &mut Graph, opts: &InferOptions) -> Result<BTreeMap<String, i64>, InferError> {
    let mut bind = BTreeMap::new();
    for (name, dims) in &opts.input_shapes {
        let v = g
            .find(name)
            .filter(|v| g.inputs().contains(v))
            .ok_or_else(|| {
                let names: Vec<&str> = g.inputs().iter().map(|v| g.value(*v).name()).collect();
                InferError::NoSuchInput(name.clone(), names.join(", "))
            })?;
        let old = g.value(v).info.ty.as_ref().and_then(Type::dims);
        if let Some(old) = &old {
            if old.len() != dims.len() {
                return Err(InferError::RankMismatch {
                    input: name.clone(),
                    given: dims.len(),
                    declared: old.len(),
                });
            }
            for (o, n) in old.iter().zip(dims) {
                if let (Dim::Param(p), Dim::Known(k)) = (o, n)
                    && let Some(prev) = bind.insert(p.clone(), *k)
                    && prev != *k
                {
                    return Err(InferError::Conflict {
                        symbol: p.clone(),
                        a: prev,
                        b: *k,
                    });
                }
            }
        }
        let elem = g.value(v).info.ty.as_ref().and_then(Type::elem);
        let ty = g.value_mut(v).info.ty.get_or_insert(Type {
            kind: TypeKind::Unset,
            denotation: None,
        });
        merge::set_tensor(ty, elem, Some(dims));
    }
    Ok(bind)
}

/// Infers one graph. `outer` holds the facts of enclosing-scope values by name; `formal`
/// the facts for this graph's inputs (subgraph bodies), by position.
pub(crate) fn infer_graph(
    g: &mut Graph,
    outer: &HashMap<String, Fact>,
    formal: &[Option<Fact>],
    st: &mut State,
) -> Vec<Option<Fact>> {
    let mut facts: Vec<Option<Fact>> =
        vec![None; g.value_ids().last().map_or(0, |v| v.index() + 1)];
    seed_facts(g, outer, formal, st, &mut facts);
    let order = match g.nodes_in_order() {
        Ok(o) => o,
        Err(e) => {
            st.warnings
                .push(format!("shape inference skipped a graph: {e}"));
            return facts;
        }
    };
    for n in order {
        let outs = if g.node(n).has_subgraphs() && st.depth < MAX_DEPTH {
            control::infer_control(g, n, &facts, st)
        } else {
            let node = g.node(n);
            let ins = node
                .inputs()
                .iter()
                .map(|v| v.and_then(|v| facts.get(v.index()).cloned().flatten()))
                .collect();
            let consts = node
                .inputs()
                .iter()
                .map(|v| v.and_then(|v| constant_of(g, v, st.inputs_constant)))
                .collect();
            let mut cx = Ctx::new(node, ins, consts, st.opset, &mut st.fresh);
            match rules::infer_node(&mut cx) {
                Ok(o) => o,
                Err(msg) => {
                    st.warnings
                        .push(format!("node '{}' ({}): {msg}", node.label(), node.op()));
                    Vec::new()
                }
            }
        };
        let outputs: Vec<Option<ValueId>> = g.node(n).outputs().to_vec();
        for (i, v) in outputs.iter().enumerate() {
            let Some(v) = v else { continue };
            let inferred = outs.get(i).cloned().unwrap_or_default();
            let declared = declared_fact(g, *v, st);
            let label = g.node(n).label();
            let merged = merge::merge(declared, inferred, &mut |why| {
                st.warnings.push(format!(
                    "node '{label}': output '{}' {why}",
                    g.value(*v).name()
                ))
            });
            if facts.len() <= v.index() {
                facts.resize(v.index() + 1, None);
            }
            facts[v.index()] = Some(merged);
        }
    }
    write_types(g, &facts);
    facts
}

/// The tensor behind `v` when it is a constant initializer or a `Constant` node's output.
fn constant_of(g: &Graph, v: ValueId, inputs_constant: bool) -> Option<crate::tensor::Tensor> {
    if let Some(t) = g.constant(v) {
        return Some(t.clone());
    }
    if let (Some(t), true) = (g.value(v).initializer(), inputs_constant) {
        return Some(t.clone());
    }
    let (p, _) = g.value(v).producer()?;
    let n = g.node(p);
    (n.op() == "Constant" && n.domain().is_empty())
        .then(|| n.attr("value").and_then(|a| a.t.as_deref().cloned()))
        .flatten()
}

/// Facts for values defined before any node runs: outer values, initializers, inputs.
fn seed_facts(
    g: &Graph,
    outer: &HashMap<String, Fact>,
    formal: &[Option<Fact>],
    st: &mut State,
    facts: &mut [Option<Fact>],
) {
    for v in g.value_ids() {
        let val = g.value(v);
        let f = if val.is_outer() {
            outer.get(val.name()).cloned()
        } else if let (Some(t), true) = (val.initializer(), st.inputs_constant) {
            Some(Fact::of_tensor(t))
        } else if let Some(pos) = g.inputs().iter().position(|x| *x == v) {
            let declared = declared_fact(g, v, st);
            match formal.get(pos).cloned().flatten() {
                Some(actual) => Some(merge::merge(declared, actual, &mut |_| {})),
                None => Some(declared),
            }
        } else {
            val.initializer().map(Fact::of_tensor)
        };
        facts[v.index()] = f;
    }
    // A constant initializer's values are known; an input's default is not.
    for v in g.inputs() {
        if let Some(Some(f)) = facts.get_mut(v.index())
            && formal.is_empty()
            && g.value(*v).initializer().is_some()
            && !st.inputs_constant
        {
            f.value = None;
        }
    }
}

/// The declared type of `v` as a fact, with bound symbols substituted.
fn declared_fact(g: &Graph, v: ValueId, st: &State) -> Fact {
    let ty = g.value(v).info.ty.as_ref();
    let mut f = Fact {
        elem: ty.and_then(Type::elem),
        dims: ty.and_then(Type::dims),
        value: None,
    };
    if let Some(dims) = f.dims.as_mut() {
        for d in dims.iter_mut() {
            *d = fact::bind_dim(d, &st.bindings);
        }
    }
    f
}

/// Merges the facts into the values' types (inputs gain only what bound symbols and
/// enclosing graphs fix).
fn write_types(g: &mut Graph, facts: &[Option<Fact>]) {
    let ids: Vec<ValueId> = g.value_ids().collect();
    for v in ids {
        let Some(Some(f)) = facts.get(v.index()) else {
            continue;
        };
        if g.value(v).is_outer() || (f.elem.is_none() && f.dims.is_none()) {
            continue;
        }
        // A shape no tensor can have (a Reshape to 2^59 rows, say) is not written down:
        // the model would then fail to load, here and elsewhere.
        let dims = f.dims.as_deref().filter(|d| could_exist(d));
        let ty = g.value_mut(v).info.ty.get_or_insert(Type {
            kind: TypeKind::Unset,
            denotation: None,
        });
        merge::set_tensor(ty, f.elem, dims);
    }
}

/// False when the known dims are negative or their product overflows 63 bits.
fn could_exist(dims: &[Dim]) -> bool {
    dims.iter()
        .try_fold(1i64, |acc, d| match d {
            Dim::Known(k) if *k < 0 => None,
            Dim::Known(k) => acc.checked_mul(*k),
            _ => Some(acc),
        })
        .is_some()
}
