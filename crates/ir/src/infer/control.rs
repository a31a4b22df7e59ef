//! Control flow: `If` merges what its branches produce, `Loop` and `Scan` infer their
//! bodies with the carried values' facts. Subgraph values get their types too.

use super::fact::Fact;
use super::{Inference, ScopeStep, State, infer_graph};
use crate::dtype::DataType;
use crate::graph::{Graph, NodeId, ValueId};
use crate::types::Dim;
use std::collections::HashMap;

/// Infers the subgraphs of node `n` and returns facts for its outputs.
pub fn infer_control(
    g: &mut Graph,
    n: NodeId,
    facts: &[Option<Fact>],
    st: &mut State,
) -> Vec<Fact> {
    let outer = outer_facts(g, n, facts);
    let ins: Vec<Option<Fact>> = g
        .node(n)
        .inputs()
        .iter()
        .map(|v| v.and_then(|v| facts.get(v.index()).cloned().flatten()))
        .collect();
    let op = g.node(n).op().to_string();
    let is_std = g.node(n).domain().is_empty();
    let mut attrs = std::mem::take(&mut g.node_mut(n).attributes);
    st.depth += 1;
    let out = match (is_std, op.as_str()) {
        (true, "If") => {
            let mut branches = Vec::new();
            for a in attrs
                .iter_mut()
                .filter(|a| matches!(a.name(), "then_branch" | "else_branch"))
            {
                let step = ScopeStep {
                    node: n,
                    attr: a.name().to_string(),
                    index: 0,
                };
                if let Some(body) = a.g.as_deref_mut() {
                    branches.push(branch_outputs(body, &outer, step, st));
                }
            }
            merge_branches(&branches)
        }
        (true, "Loop") => below_loop(st, |st| loop_(&mut attrs, &outer, &ins, st)),
        (true, "Scan") => below_loop(st, |st| scan(&mut attrs, &outer, &ins, st)),
        _ => below_loop(st, |st| {
            for a in attrs.iter_mut() {
                for body in a.subgraphs_mut() {
                    infer_graph(body, &outer, &[], st);
                }
            }
            Vec::new()
        }),
    };
    st.depth -= 1;
    g.node_mut(n).attributes = attrs;
    out
}

/// Facts of the values node `n` captures from `g`, by name (plus what `g` itself
/// received from further out, which its captures already include).
fn outer_facts(g: &Graph, n: NodeId, facts: &[Option<Fact>]) -> HashMap<String, Fact> {
    let mut m = HashMap::new();
    let ids: Vec<ValueId> = g.node(n).captures().to_vec();
    for v in ids {
        if let Some(Some(f)) = facts.get(v.index()) {
            m.insert(g.value(v).name().to_string(), f.clone());
        }
    }
    m
}

/// Infers an `If` branch and, while every enclosing step is an `If` branch, keeps its
/// facts under its path.
fn branch_outputs(
    body: &mut Graph,
    outer: &HashMap<String, Fact>,
    step: ScopeStep,
    st: &mut State,
) -> Vec<Fact> {
    let Some(mut path) = st.path.clone() else {
        return outputs_of(body, outer, &[], st);
    };
    path.push(step);
    let saved = st.path.replace(path.clone());
    let facts = infer_graph(body, outer, &[], st);
    st.path = saved;
    let outs = body
        .outputs()
        .iter()
        .map(|v| facts.get(v.index()).cloned().flatten().unwrap_or_default())
        .collect();
    st.branches.insert(path, Inference::of_facts(facts));
    outs
}

/// Runs `f` with the path cleared: nothing under a loop body (or an op whose bodies
/// inference does not know) is kept.
fn below_loop<T>(st: &mut State, f: impl FnOnce(&mut State) -> T) -> T {
    let saved = st.path.take();
    let out = f(st);
    st.path = saved;
    out
}

fn outputs_of(
    body: &mut Graph,
    outer: &HashMap<String, Fact>,
    formal: &[Option<Fact>],
    st: &mut State,
) -> Vec<Fact> {
    let facts = infer_graph(body, outer, formal, st);
    body.outputs()
        .iter()
        .map(|v| facts.get(v.index()).cloned().flatten().unwrap_or_default())
        .collect()
}

/// What both branches agree on.
fn merge_branches(branches: &[Vec<Fact>]) -> Vec<Fact> {
    let Some(first) = branches.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, f)| {
            branches[1..].iter().fold(f.clone(), |acc, b| {
                let Some(o) = b.get(i) else {
                    return Fact::default();
                };
                Fact {
                    elem: if acc.elem == o.elem { acc.elem } else { None },
                    dims: match (&acc.dims, &o.dims) {
                        (Some(x), Some(y)) if x.len() == y.len() => Some(
                            x.iter()
                                .zip(y)
                                .map(|(p, q)| if p == q { p.clone() } else { Dim::Unknown })
                                .collect(),
                        ),
                        _ => None,
                    },
                    value: if acc.value == o.value {
                        acc.value
                    } else {
                        None
                    },
                }
            })
        })
        .collect()
}

/// Loop(M, cond, v...) with body(iter, cond, v...) -> (cond, v..., scan...).
fn loop_(
    attrs: &mut [crate::attr::Attribute],
    outer: &HashMap<String, Fact>,
    ins: &[Option<Fact>],
    st: &mut State,
) -> Vec<Fact> {
    let Some(body) = attrs
        .iter_mut()
        .find(|a| a.name() == "body")
        .and_then(|a| a.g.as_deref_mut())
    else {
        return Vec::new();
    };
    let head = [
        Some(Fact::tensor(Some(DataType::Int64), vec![])),
        Some(Fact::tensor(Some(DataType::Bool), vec![])),
    ];
    let layout = |carried: &[Option<Fact>]| -> Vec<Option<Fact>> {
        head.iter().chain(carried).cloned().collect()
    };
    let init: Vec<Option<Fact>> = ins.iter().skip(2).cloned().collect();
    let carried = carried_facts(body, outer, init, &layout, 1, st);
    let outs = outputs_of(body, outer, &layout(&carried), st);
    let n_carried = ins.len().saturating_sub(2);
    let trip = ins
        .first()
        .cloned()
        .flatten()
        .and_then(|f| f.value)
        .and_then(|v| v.first().cloned());
    let trip = trip.unwrap_or(Dim::Unknown);
    let mut result = Vec::new();
    for (k, f) in outs.iter().enumerate().skip(1) {
        if k <= n_carried {
            let init = ins.get(k + 1).cloned().flatten().unwrap_or_default();
            result.push(merge_branches(&[vec![init], vec![f.clone()]]).remove(0));
        } else {
            let dims = f.dims.as_ref().map(|d| {
                let mut v = vec![trip.clone()];
                v.extend(d.iter().cloned());
                v
            });
            result.push(Fact {
                elem: f.elem,
                dims,
                value: None,
            });
        }
    }
    result
}

/// Scan(state..., scan_in...) with body(state..., slice...) -> (state..., slice_out...).
fn scan(
    attrs: &mut [crate::attr::Attribute],
    outer: &HashMap<String, Fact>,
    ins: &[Option<Fact>],
    st: &mut State,
) -> Vec<Fact> {
    let n_scan = attrs
        .iter()
        .find(|a| a.name() == "num_scan_inputs")
        .and_then(|a| a.i)
        .unwrap_or(0) as usize;
    let Some(body) = attrs
        .iter_mut()
        .find(|a| a.name() == "body")
        .and_then(|a| a.g.as_deref_mut())
    else {
        return Vec::new();
    };
    let n_state = ins.len().saturating_sub(n_scan);
    let mut slices: Vec<Option<Fact>> = Vec::new();
    let mut len = Dim::Unknown;
    for f in &ins[n_state..] {
        slices.push(f.clone().map(|f| {
            let dims = f.dims.map(|d| {
                if let Some(first) = d.first() {
                    len = first.clone();
                }
                d[1.min(d.len())..].to_vec()
            });
            Fact {
                elem: f.elem,
                dims,
                value: None,
            }
        }));
    }
    let layout = |state: &[Option<Fact>]| -> Vec<Option<Fact>> {
        state.iter().chain(&slices).cloned().collect()
    };
    let state = carried_facts(body, outer, ins[..n_state].to_vec(), &layout, 0, st);
    let outs = outputs_of(body, outer, &layout(&state), st);
    outs.into_iter()
        .enumerate()
        .map(|(k, f)| {
            if k < n_state {
                // No slices at all: the initial state comes out as it went in.
                let init = ins.get(k).cloned().flatten().unwrap_or_default();
                merge_branches(&[vec![init], vec![f]]).remove(0)
            } else {
                let dims = f
                    .dims
                    .map(|d| std::iter::once(len.clone()).chain(d).collect());
                Fact {
                    elem: f.elem,
                    dims,
                    value: None,
                }
            }
        })
        .collect()
}

/// Places carried facts among a body's inputs.
type Layout<'a> = dyn Fn(&[Option<Fact>]) -> Vec<Option<Fact>> + 'a;

/// Probes of a body before its carried facts are given up as unknown dims.
const MAX_PROBES: usize = 4;

/// Facts for a body's carried inputs that hold on every iteration, not only the first:
/// from the initial values' facts (their values dropped), each probe infers a copy of
/// the body and widens each carried fact to what it and the body's matching output
/// (`out_at` + k) agree on, until nothing changes. `layout` places the carried facts
/// among the body's inputs. Probes write nothing to the body and leave no warnings.
fn carried_facts(
    body: &Graph,
    outer: &HashMap<String, Fact>,
    init: Vec<Option<Fact>>,
    layout: &Layout,
    out_at: usize,
    st: &mut State,
) -> Vec<Option<Fact>> {
    let mut carried: Vec<Option<Fact>> = init
        .into_iter()
        .map(|f| {
            f.map(|mut f| {
                f.value = None;
                f
            })
        })
        .collect();
    for _ in 0..MAX_PROBES {
        let mut probe = body.clone();
        let warned = st.warnings.len();
        let outs = outputs_of(&mut probe, outer, &layout(&carried), st);
        st.warnings.truncate(warned);
        let widened: Vec<Option<Fact>> = carried
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let out = outs.get(out_at + k).cloned().unwrap_or_default();
                c.clone()
                    .map(|c| merge_branches(&[vec![c], vec![out]]).remove(0))
            })
            .collect();
        if widened == carried {
            return carried;
        }
        carried = widened;
    }
    carried
        .into_iter()
        .map(|f| {
            f.map(|f| Fact {
                elem: f.elem,
                dims: f.dims.map(|d| vec![Dim::Unknown; d.len()]),
                value: None,
            })
        })
        .collect()
}
