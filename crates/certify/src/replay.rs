//! Structural replay: the original model as records, the logged regions applied one by
//! one, the result compared with the optimized model. A region applies only where the
//! state holds exactly what it says it removed.

use crate::record::{NodeRec, Region, TensorRec};
use rayon::prelude::*;
use std::collections::BTreeMap;
use whittle_ir::{Graph, Model};

/// A graph as records, keyed by [`NodeRec::key`] and by initializer name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphState {
    pub nodes: BTreeMap<String, NodeRec>,
    pub inits: BTreeMap<String, TensorRec>,
    pub outputs: Vec<String>,
    pub inputs: Vec<String>,
}

/// Every graph of a model, by scope (empty: the main graph).
#[derive(Clone, Debug, Default)]
pub struct ModelState {
    pub scopes: BTreeMap<Vec<String>, GraphState>,
    /// Its initializers' and Constants' tensors, by digest (to read values from).
    pub tensors: crate::folded::Store,
}

impl ModelState {
    /// The records of `model`, its subgraphs included.
    pub fn of(model: &Model) -> ModelState {
        let mut s = ModelState::default();
        add_graph(&mut s, &model.graph, Vec::new());
        s
    }

    /// Applies `region`, or says what in the state differs from what it claims to remove.
    pub fn apply(&mut self, region: &Region) -> Result<(), String> {
        let g = self
            .scopes
            .get_mut(&region.scope)
            .ok_or_else(|| format!("no subgraph at {}", region.scope.join(" / ")))?;
        for rec in &region.removed {
            match g.nodes.get(&rec.key()) {
                Some(have) if have == rec => {
                    g.nodes.remove(&rec.key());
                }
                Some(have) => return Err(node_differs(rec, have)),
                None => return Err(format!("removes node {} ({}), absent", rec.key(), rec.op)),
            }
        }
        for t in &region.inits_removed {
            match g.inits.get(&t.name) {
                Some(have) if have == t => {
                    g.inits.remove(&t.name);
                }
                Some(_) => return Err(format!("initializer '{}' is not as recorded", t.name)),
                None => return Err(format!("removes initializer '{}', absent", t.name)),
            }
        }
        for t in &region.inits_added {
            if g.inits.insert(t.name.clone(), t.clone()).is_some() {
                return Err(format!("adds initializer '{}', which exists", t.name));
            }
        }
        for rec in &region.added {
            if g.nodes.insert(rec.key(), rec.clone()).is_some() {
                return Err(format!("adds node {}, which exists", rec.key()));
            }
        }
        swap_list(&mut g.outputs, &region.outputs, "outputs")?;
        swap_list(&mut g.inputs, &region.inputs, "inputs")?;
        self.drop_removed_holders(region);
        Ok(())
    }

    /// Subgraphs follow their holders. A holder the region changed in place keeps them; one
    /// whose outputs it renamed has them renamed; one it removed loses them, except the
    /// holders inside them that the region put in its place (an inlined `If` branch's own
    /// `If`s move up with their subgraphs, their outputs now the `If`'s).
    fn drop_removed_holders(&mut self, region: &Region) {
        let at = &region.scope;
        let is_holder = |r: &NodeRec| r.attrs.iter().any(|x| x.ends_with("=graph"));
        let same = |a: &NodeRec, b: &NodeRec| {
            a.op == b.op && a.name == b.name && a.attrs == b.attrs && a.inputs == b.inputs
        };
        for rec in region.removed.iter().filter(|r| is_holder(r)) {
            let prefix = format!("{}:", rec.outputs.first().cloned().unwrap_or_default());
            let moves = self.inlined_holders(at, rec, &prefix, region);
            if moves.is_empty() {
                // Changed in place (rewired: same key and op) or renamed (same node).
                if region
                    .added
                    .iter()
                    .any(|a| a.key() == rec.key() && a.op == rec.op)
                {
                    continue;
                }
                if let Some(a) = region.added.iter().find(|a| same(a, rec)) {
                    let to = format!("{}:", a.outputs.first().cloned().unwrap_or_default());
                    self.rename_step(at, &prefix, &to);
                    continue;
                }
            }
            let under = |scope: &Vec<String>| {
                scope.len() > at.len()
                    && scope[..at.len()] == at[..]
                    && scope[at.len()].starts_with(&prefix)
            };
            let moved: Vec<(Vec<String>, GraphState)> = self
                .scopes
                .iter()
                .filter(|(scope, _)| under(scope) && scope.len() > at.len() + 1)
                .filter_map(|(scope, g)| {
                    let (branch, step) = (&scope[at.len()], &scope[at.len() + 1]);
                    let (from, to) = moves
                        .iter()
                        .find(|(b, f, _)| b == branch && step.starts_with(f.as_str()))
                        .map(|(_, f, t)| (f, t))?;
                    let mut new = at.clone();
                    new.push(format!("{to}{}", &step[from.len()..]));
                    new.extend(scope[at.len() + 2..].iter().cloned());
                    Some((new, g.clone()))
                })
                .collect();
            self.scopes.retain(|scope, _| !under(scope));
            self.scopes.extend(moved);
        }
    }

    /// For a removed holder `rec` at `at`: the holders inside its subgraphs that the region
    /// added at `at`, as (branch step, old step prefix, new step prefix). A branch's
    /// outputs are the holder's, so a nested holder defining branch output i now defines
    /// the holder's output i.
    fn inlined_holders(
        &self,
        at: &[String],
        rec: &NodeRec,
        prefix: &str,
        region: &Region,
    ) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (scope, g) in &self.scopes {
            let direct = scope.len() == at.len() + 1
                && scope[..at.len()] == at[..]
                && scope[at.len()].starts_with(prefix);
            if !direct {
                continue;
            }
            let rename: std::collections::HashMap<&String, &String> =
                g.outputs.iter().zip(&rec.outputs).collect();
            for n in g
                .nodes
                .values()
                .filter(|n| n.attrs.iter().any(|x| x.ends_with("=graph")))
            {
                // Inlining keeps the branch's name unless the If's output is an interface
                // name, which the branch's value then takes.
                let old = n.outputs.first().cloned().unwrap_or_default();
                let renamed = rename.get(&old).map(|v| (*v).clone());
                let found = [Some(old.clone()), renamed]
                    .into_iter()
                    .flatten()
                    .find(|new| {
                        region.added.iter().any(|a| {
                            a.outputs.first() == Some(new)
                                && a.op == n.op
                                && a.attrs == n.attrs
                                && a.inputs == n.inputs
                        })
                    });
                if let Some(new) = found {
                    out.push((
                        scope[at.len()].clone(),
                        format!("{old}:"),
                        format!("{new}:"),
                    ));
                }
            }
        }
        out
    }

    /// Scopes below `at` whose next step starts with `from` start with `to` instead.
    fn rename_step(&mut self, at: &[String], from: &str, to: &str) {
        let hit = |scope: &Vec<String>| {
            scope.len() > at.len()
                && scope[..at.len()] == at[..]
                && scope[at.len()].starts_with(from)
        };
        let moved: Vec<(Vec<String>, GraphState)> = self
            .scopes
            .iter()
            .filter(|(scope, _)| hit(scope))
            .map(|(scope, g)| {
                let mut s = scope.clone();
                s[at.len()] = format!("{to}{}", &scope[at.len()][from.len()..]);
                (s, g.clone())
            })
            .collect();
        self.scopes.retain(|scope, _| !hit(scope));
        self.scopes.extend(moved);
    }

    /// What differs between this state and `other` (empty when equal), at most `limit`:
    /// the node key or initializer name, and what differs.
    pub fn differences(&self, other: &ModelState, limit: usize) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let scopes: std::collections::BTreeSet<&Vec<String>> =
            self.scopes.keys().chain(other.scopes.keys()).collect();
        for scope in scopes {
            let at = if scope.is_empty() {
                String::new()
            } else {
                format!(" in {}", scope.join(" / "))
            };
            match (self.scopes.get(scope), other.scopes.get(scope)) {
                (Some(a), Some(b)) => graph_differences(a, b, &at, &mut out),
                (Some(_), None) => out.push((String::new(), format!("subgraph{at} is missing"))),
                (None, Some(_)) => {
                    out.push((String::new(), format!("subgraph{at} was not expected")))
                }
                (None, None) => {}
            }
        }
        out.truncate(limit);
        out
    }
}

fn add_graph(s: &mut ModelState, g: &Graph, scope: Vec<String>) {
    let mut st = GraphState::default();
    for n in g.node_ids() {
        let rec = NodeRec::of(g, n);
        let holder = rec.outputs.first().cloned().unwrap_or_default();
        for a in g.node(n).attributes.iter() {
            for (i, sub) in a.subgraphs().enumerate() {
                let mut inner = scope.clone();
                inner.push(format!("{holder}:{}:{i}", a.name()));
                add_graph(s, sub, inner);
            }
        }
        st.nodes.insert(rec.key(), rec);
    }
    // Hashing the weights is most of the work: both cores share it.
    let inits: Vec<(&str, &whittle_ir::Tensor)> = g
        .initializers()
        .iter()
        .filter_map(|v| Some((g.value(*v).name(), g.value(*v).initializer()?)))
        .collect();
    st.inits = inits
        .par_iter()
        .map(|(name, t)| (name.to_string(), TensorRec::of(name, t)))
        .collect();
    for (name, t) in inits {
        s.tensors.insert(st.inits[name].sha256.clone(), t.clone());
    }
    // Every tensor attribute (a Constant's value, a ConstantOfShape's fill), so that a
    // node can be rebuilt from its record.
    for n in g.node_ids() {
        for t in g.node(n).attributes.iter().filter_map(|a| a.t.as_deref()) {
            s.tensors.insert(crate::record::tensor_digest(t), t.clone());
        }
    }
    let names = |ids: &[whittle_ir::ValueId]| -> Vec<String> {
        ids.iter().map(|v| g.value(*v).name().to_string()).collect()
    };
    st.outputs = names(g.outputs());
    st.inputs = names(g.inputs());
    s.scopes.insert(scope, st);
}

fn node_differs(want: &NodeRec, have: &NodeRec) -> String {
    let what = if want.op != have.op {
        format!("op {} where the certificate says {}", have.op, want.op)
    } else if want.inputs != have.inputs {
        format!(
            "inputs [{}] where the certificate says [{}]",
            have.inputs.join(", "),
            want.inputs.join(", ")
        )
    } else if want.attrs != have.attrs {
        format!(
            "attributes [{}] where the certificate says [{}]",
            have.attrs.join(" "),
            want.attrs.join(" ")
        )
    } else {
        "a different name".to_string()
    };
    format!("node {} ({}) has {what}", want.key(), want.op)
}

fn swap_list(
    list: &mut Vec<String>,
    change: &Option<(Vec<String>, Vec<String>)>,
    what: &str,
) -> Result<(), String> {
    if let Some((before, after)) = change {
        if list != before {
            return Err(format!(
                "graph {what} are [{}], the certificate says [{}]",
                list.join(", "),
                before.join(", ")
            ));
        }
        *list = after.clone();
    }
    Ok(())
}

fn graph_differences(a: &GraphState, b: &GraphState, at: &str, out: &mut Vec<(String, String)>) {
    let mut push = |k: &str, msg: String| out.push((k.to_string(), msg));
    for (k, rec) in &a.nodes {
        match b.nodes.get(k) {
            None => push(k, format!("node {k} ({}){at} is missing", rec.op)),
            Some(other) if other != rec => {
                // The optimized model's node against the replay's.
                push(k, format!("{}{at}", node_differs(rec, other)))
            }
            _ => {}
        }
    }
    for (k, rec) in &b.nodes {
        if !a.nodes.contains_key(k) {
            push(k, format!("node {k} ({}){at} was not expected", rec.op));
        }
    }
    for (k, t) in &a.inits {
        match b.inits.get(k) {
            None => push(k, format!("initializer '{k}'{at} is missing")),
            Some(o) if o != t => push(k, format!("initializer '{k}'{at} holds other data")),
            _ => {}
        }
    }
    for k in b.inits.keys().filter(|k| !a.inits.contains_key(*k)) {
        push(k, format!("initializer '{k}'{at} was not expected"));
    }
    for (what, want, have) in [
        ("outputs", &a.outputs, &b.outputs),
        ("inputs", &a.inputs, &b.inputs),
    ] {
        if want != have {
            let msg = format!(
                "graph {what}{at} are [{}], expected [{}]",
                have.join(", "),
                want.join(", ")
            );
            push("", msg);
        }
    }
}
