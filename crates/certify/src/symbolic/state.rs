//! Symbolic proof of a group of rewrites on the replay's state, for groups inside
//! subgraphs that a later rewrite renamed or inlined (so neither file holds their graph
//! under the path they were made in). The replay's state holds every graph as records;
//! each graph on the path is rebuilt from them as it was before the group's first
//! rewrite (attributes from their canonical text, tensors from the store by digest) and
//! evaluated as terms, then the group's nodes after its last rewrite are evaluated on
//! those, and the group is proved when what they hand on is the same term as before.

use super::eval::{eval_into, input_sym, tensor_sym};
use super::poly::Poly;
use super::terms::{Sym, Term, Terms};
use crate::components::Component;
use crate::folded::Store;
use crate::record::{NodeRec, TensorRec};
use crate::replay::GraphState;
use std::collections::HashMap;
use whittle_ir::{Attribute, Graph, Node, Type};

/// The graphs on a subgraph's path (the main graph first), by scope.
pub type Chain = std::collections::BTreeMap<Vec<String>, GraphState>;

/// What a proof on the replay's state needs of the original model: the main graph's
/// declared input types and the standard domain's opset.
pub struct Context {
    pub input_types: HashMap<String, Type>,
    pub opset: i64,
}

/// Proves component `c` (in a subgraph): `before` holds the graphs on its path as they
/// were before its first rewrite, `after` its graph after its last. The number of
/// values compared, or None.
pub fn prove_component(
    before: &Chain,
    after: &GraphState,
    c: &Component,
    store: &Store,
    cx: &Context,
) -> Option<usize> {
    let mut terms = Terms::default();
    let mut env: HashMap<String, Sym> = HashMap::new();
    let mut symbol = 0u32;
    for depth in 0..=c.scope.len() {
        let gs = before.get(&c.scope[..depth])?;
        let g = graph_of(gs, store)?;
        for v in g.inputs() {
            let name = g.value(*v).name();
            let ty = if depth == 0 {
                cx.input_types.get(name)
            } else {
                None
            };
            let leaf = format!("{}/{name}", c.scope[..depth].join("/"));
            env.insert(
                name.to_string(),
                input_sym(&mut terms, &leaf, ty, &mut symbol),
            );
        }
        for (name, rec) in &gs.inits {
            env.insert(name.clone(), init_sym(&mut terms, rec, store));
        }
        for n in g.nodes_in_order().ok()? {
            eval_into(&mut terms, &g, n, cx.opset, &mut env);
        }
    }
    let original = env.clone();
    let inner = before.get(&c.scope)?;
    for key in &c.before {
        for o in &inner.nodes.get(key)?.outputs {
            env.remove(o);
        }
    }
    for (name, rec) in after
        .inits
        .iter()
        .filter(|(n, r)| inner.inits.get(*n) != Some(*r))
    {
        env.insert(name.clone(), init_sym(&mut terms, rec, store));
    }
    let g = graph_of(after, store)?;
    let added: Vec<String> = c.after.iter().cloned().collect();
    for n in g.nodes_in_order().ok()? {
        if added.contains(&NodeRec::of(&g, n).key()) {
            eval_into(&mut terms, &g, n, cx.opset, &mut env);
        }
    }
    let handed = handed_on(&g, &added);
    for name in &handed {
        if env.get(name)?.term != original.get(name)?.term {
            return None;
        }
    }
    Some(handed.len())
}

/// An initializer: its tensor when the store holds it, else a constant known by its
/// type, dims and digest alone (one an intermediate fold made, in neither file).
fn init_sym(terms: &mut Terms, rec: &TensorRec, store: &Store) -> Sym {
    if let Some(t) = store.get(&rec.sha256) {
        return tensor_sym(terms, t, Some(rec.sha256.clone()));
    }
    let dims: Vec<Poly> = rec.dims.iter().map(|d| Poly::constant(*d)).collect();
    let key = format!("t:{}:{:?}:{}", rec.dtype, rec.dims, rec.sha256);
    Sym {
        dtype: rec.dtype,
        shape: Some(dims.iter().cloned().map(Some).collect()),
        ints: None,
        term: terms.intern(Term::Leaf(key), Some(dims)),
        splat: None,
    }
}

/// Names the added nodes (by key) define that other nodes of `g` read, or that are its
/// outputs.
fn handed_on(g: &Graph, added: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in g.node_ids() {
        if !added.contains(&NodeRec::of(g, n).key()) {
            continue;
        }
        for v in g.node(n).outputs().iter().flatten() {
            let read_outside = g
                .value(*v)
                .uses()
                .iter()
                .any(|u| !added.contains(&NodeRec::of(g, u.node).key()));
            if read_outside || g.is_output(*v) {
                out.push(g.value(*v).name().to_string());
            }
        }
    }
    out
}

/// A graph rebuilt from its records: nodes with their attributes, its inputs and
/// outputs (without types); its initializers are read by [`init_sym`].
fn graph_of(gs: &GraphState, store: &Store) -> Option<Graph> {
    let mut g = Graph::new();
    for rec in gs.nodes.values() {
        let node = node_of(rec, store)?;
        let name = |g: &mut Graph, n: &String| (!n.is_empty()).then(|| g.intern(n));
        let ins = rec.inputs.iter().map(|n| name(&mut g, n)).collect();
        let outs = rec.outputs.iter().map(|n| name(&mut g, n)).collect();
        g.add_node(node, ins, outs).ok()?;
    }
    for n in gs.inputs.iter().filter(|n| !gs.inits.contains_key(*n)) {
        let v = g.intern(n);
        g.push_input(v);
    }
    for n in &gs.outputs {
        let v = g.intern(n);
        g.push_output(v);
    }
    Some(g)
}

/// A node rebuilt from its record. An attribute the record does not spell out (a
/// subgraph, a sparse tensor) becomes `__opaque` naming the node, so its outputs equal
/// only themselves.
fn node_of(rec: &NodeRec, store: &Store) -> Option<Node> {
    let (domain, op) = rec.op.split_once('|')?;
    let mut node = Node::new(op);
    node.domain = (!domain.is_empty()).then(|| domain.to_string());
    for text in &rec.attrs {
        let (name, value) = text.split_once('=')?;
        match attribute_of(name, value, store) {
            Some(a) => node.set_attr(a),
            None => node.set_attr(Attribute::string("__opaque", &rec.key())),
        }
    }
    Some(node)
}

/// An attribute from its canonical text (`record::attribute_text`); None for what the
/// text does not spell out.
fn attribute_of(name: &str, value: &str, store: &Store) -> Option<Attribute> {
    let (kind, body) = value.split_once(':')?;
    let hex = |s: &str| -> Option<Vec<u8>> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    };
    let bits = |s: &str| u32::from_str_radix(s, 16).ok().map(f32::from_bits);
    Some(match kind {
        "i" => Attribute::int(name, body.parse().ok()?),
        "f" => Attribute::float(name, bits(body)?),
        "s" => {
            let mut a = Attribute::string(name, "");
            a.s = Some(hex(body)?.into());
            a
        }
        "ints" => Attribute::ints(
            name,
            body.split(',')
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?,
        ),
        "floats" => {
            let mut a = Attribute::float(name, 0.0);
            a.f = None;
            a.floats = body
                .split(',')
                .map(bits)
                .collect::<Option<Vec<f32>>>()?
                .into();
            a.kind = Some(6);
            a
        }
        "t" if !value.contains(';') => {
            let sha = body.rsplit(':').next()?;
            Attribute::tensor(name, store.get(sha)?.clone())
        }
        _ => return None,
    })
}
