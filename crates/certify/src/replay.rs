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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelState {
    pub scopes: BTreeMap<Vec<String>, GraphState>,
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

    /// Subgraphs of holders the region removed and did not add back go with them.
    fn drop_removed_holders(&mut self, region: &Region) {
        for rec in &region.removed {
            let kept = region.added.iter().any(|a| a.key() == rec.key());
            if kept || !rec.attrs.iter().any(|a| a.ends_with("=graph")) {
                continue;
            }
            let prefix = format!("{}:", rec.outputs.first().cloned().unwrap_or_default());
            self.scopes.retain(|scope, _| {
                scope.len() <= region.scope.len()
                    || scope[..region.scope.len()] != region.scope[..]
                    || !scope[region.scope.len()].starts_with(&prefix)
            });
        }
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
    if a.outputs != b.outputs {
        let msg = format!(
            "graph outputs{at} are [{}], expected [{}]",
            b.outputs.join(", "),
            a.outputs.join(", ")
        );
        push("", msg);
    }
    if a.inputs != b.inputs {
        let msg = format!(
            "graph inputs{at} are [{}], expected [{}]",
            b.inputs.join(", "),
            a.inputs.join(", ")
        );
        push("", msg);
    }
}
