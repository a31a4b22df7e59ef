//! Evaluating graphs as terms: every node of the original once, then each region's
//! nodes of the optimized model on the original's terms, compared output by output.

use super::arith::{self, tracked};
use super::poly::Poly;
use super::terms::{Sym, Term, TermId, Terms};
use super::{Out, nn, shape_ops};
use crate::components::Component;
use crate::record::{NodeRec, TensorRec, attribute_text, tensor_digest};
use std::collections::{BTreeMap, HashMap, HashSet};
use whittle_ir::{Graph, Model, Node, NodeId, Tensor, ValueId};

/// Integer tensors up to this many elements are followed element by element.
const MAX_INTS: u64 = 4096;

/// Ops whose outputs are random: equal to nothing.
const RANDOM: [&str; 6] = [
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
];

/// Initializer records (their digests) of every graph of a model, by scope.
pub type Inits = BTreeMap<Vec<String>, BTreeMap<String, TensorRec>>;

/// The original model evaluated as terms, ready to judge regions of the optimized one.
pub struct Prover<'a> {
    optimized: &'a Model,
    /// The optimized model's initializer records.
    opt_inits: &'a Inits,
    terms: Terms,
    /// The original's values in each graph (a subgraph's holds the values it sees of
    /// the graphs around it), by scope.
    syms: HashMap<Vec<String>, HashMap<String, Sym>>,
    /// The optimized model's opset (ops are named with it: an op's meaning can change
    /// between opsets).
    opt_opset: i64,
    /// Each optimized graph's nodes in topological order with their record keys, by
    /// scope, computed the first time a region there is proved.
    orders: HashMap<Vec<String>, Vec<(String, NodeId)>>,
}

impl<'a> Prover<'a> {
    /// Evaluates every graph of `original`; `inits` are its initializer records (the
    /// digests the replay computed, so no weight is hashed twice).
    pub fn new(
        original: &Model,
        inits: &Inits,
        optimized: &'a Model,
        opt_inits: &'a Inits,
    ) -> Prover<'a> {
        let mut p = Prover {
            optimized,
            opt_inits,
            terms: Terms::default(),
            syms: HashMap::new(),
            opt_opset: optimized.opset("").unwrap_or(1),
            orders: HashMap::new(),
        };
        let opset = original.opset("").unwrap_or(1);
        let mut cx = GraphCx {
            opset,
            inits,
            terms: &mut p.terms,
            scopes: &mut p.syms,
            next_symbol: 0,
        };
        cx.eval(&original.graph, Vec::new(), HashMap::new());
        p
    }

    /// Whether `c`'s region after gives the same terms as the original for everything
    /// the rest of the optimized model reads of it: the number of values compared, or
    /// None when some differ or are not known.
    pub fn prove(&mut self, c: &Component) -> Option<usize> {
        let o = subgraph(&self.optimized.graph, &c.scope)?;
        let empty = BTreeMap::new();
        let inits = self.opt_inits.get(&c.scope).unwrap_or(&empty);
        if !self.orders.contains_key(&c.scope) {
            let order = o.nodes_in_order().ok()?;
            let keyed = order
                .into_iter()
                .map(|n| (NodeRec::of(o, n).key(), n))
                .collect();
            self.orders.insert(c.scope.clone(), keyed);
        }
        let nodes: Vec<NodeId> = self.orders[&c.scope]
            .iter()
            .filter(|(k, _)| c.after.contains(k))
            .map(|(_, n)| *n)
            .collect();
        if nodes.len() != c.after.len() {
            return None;
        }
        // A scope whose holder was renamed or inlined since is not followed here.
        let original = self.syms.get(&c.scope)?;
        let mut local: HashMap<String, Sym> = HashMap::new();
        for n in &nodes {
            let node = o.node(*n);
            let mut ins: Vec<Option<Sym>> = Vec::new();
            for v in node.inputs() {
                ins.push(match v {
                    Some(v) => Some(read(o, *v, &local, inits, original, &mut self.terms)?),
                    None => None,
                });
            }
            let refs: Vec<Option<&Sym>> = ins.iter().map(Option::as_ref).collect();
            let inlined = (node.op() == "If" && node.domain().is_empty())
                .then(|| {
                    let mut visible = original.clone();
                    visible.extend(local.iter().map(|(k, v)| (k.clone(), v.clone())));
                    let cond = refs.first().copied().flatten();
                    eval_if(&mut self.terms, node, self.opt_opset, cond, &visible)
                })
                .flatten();
            let outs = match inlined {
                Some(outs) => outs,
                None => eval_node(&mut self.terms, node, self.opt_opset, &refs),
            };
            for (v, s) in node.outputs().iter().zip(outs) {
                if let Some(v) = v {
                    local.insert(o.value(*v).name().to_string(), s);
                }
            }
        }
        let handed = handed_on(o, &nodes);
        for name in &handed {
            let (after, before) = (local.get(name)?, original.get(name)?);
            if after.term != before.term {
                return None;
            }
        }
        Some(handed.len())
    }
}

/// The graph at `scope` (steps `HOLDER:ATTRIBUTE:INDEX` from the main graph).
fn subgraph<'g>(g: &'g Graph, scope: &[String]) -> Option<&'g Graph> {
    let Some((step, rest)) = scope.split_first() else {
        return Some(g);
    };
    let mut parts = step.rsplitn(3, ':');
    let (i, attr, holder) = (parts.next()?, parts.next()?, parts.next()?);
    let i: usize = i.parse().ok()?;
    let n = g.node_ids().find(|n| {
        let outs = g.node(*n).outputs();
        outs.first().copied().flatten().map(|v| g.value(v).name()) == Some(holder)
    })?;
    let sub = g.node(n).attr(attr)?.subgraphs().nth(i)?;
    subgraph(sub, rest)
}

/// What a region node of the optimized graph `o` reads under `v`: a value the region
/// computed, an initializer of `o`, or the original's value.
fn read(
    o: &Graph,
    v: ValueId,
    local: &HashMap<String, Sym>,
    inits: &BTreeMap<String, TensorRec>,
    original: &HashMap<String, Sym>,
    terms: &mut Terms,
) -> Option<Sym> {
    let name = o.value(v).name();
    if let Some(s) = local.get(name) {
        return Some(s.clone());
    }
    if let Some(t) = o.value(v).initializer() {
        let digest = inits.get(name).map(|r| r.sha256.clone());
        return Some(tensor_sym(terms, t, digest));
    }
    original.get(name).cloned()
}

/// Evaluates a model's graphs as terms into `scopes`.
struct GraphCx<'c> {
    opset: i64,
    inits: &'c Inits,
    terms: &'c mut Terms,
    scopes: &'c mut HashMap<Vec<String>, HashMap<String, Sym>>,
    /// The next symbol for an open dim (unique across graphs).
    next_symbol: u32,
}

impl GraphCx<'_> {
    /// Every value of `g` (at `scope`, seeing `outer`) as terms, then its subgraphs'.
    fn eval(&mut self, g: &Graph, scope: Vec<String>, outer: HashMap<String, Sym>) {
        let mut syms = outer;
        let empty = BTreeMap::new();
        let inits = self.inits.get(&scope).unwrap_or(&empty);
        let prefix = scope.join("/");
        for v in g.inputs() {
            let value = g.value(*v);
            if value.initializer().is_none() {
                let leaf = format!("{prefix}/{}", value.name());
                let ty = value.info.ty.as_ref();
                let s = input_sym(self.terms, &leaf, ty, &mut self.next_symbol);
                syms.insert(value.name().to_string(), s);
            }
        }
        for v in g.initializers() {
            if let Some(t) = g.value(*v).initializer() {
                let name = g.value(*v).name();
                let digest = inits.get(name).map(|r| r.sha256.clone());
                syms.insert(name.to_string(), tensor_sym(self.terms, t, digest));
            }
        }
        let order = g.nodes_in_order().unwrap_or_default();
        for n in &order {
            eval_into(self.terms, g, *n, self.opset, &mut syms);
        }
        for n in order {
            let holder = NodeRec::of(g, n)
                .outputs
                .first()
                .cloned()
                .unwrap_or_default();
            for a in g.node(n).attributes.iter() {
                for (i, sub) in a.subgraphs().enumerate() {
                    let mut inner = scope.clone();
                    inner.push(format!("{holder}:{}:{i}", a.name()));
                    self.eval(sub, inner, syms.clone());
                }
            }
        }
        self.scopes.insert(scope, syms);
    }
}

/// Evaluates node `n` of `g` on `syms`, adding its outputs.
pub(crate) fn eval_into(
    terms: &mut Terms,
    g: &Graph,
    n: NodeId,
    opset: i64,
    syms: &mut HashMap<String, Sym>,
) {
    let node = g.node(n);
    let ins: Option<Vec<Option<&Sym>>> = node
        .inputs()
        .iter()
        .map(|v| match v {
            Some(v) => syms.get(g.value(*v).name()).map(Some),
            None => Some(None),
        })
        .collect();
    let inlined = match &ins {
        Some(ins) if node.op() == "If" && node.domain().is_empty() => {
            eval_if(terms, node, opset, ins.first().copied().flatten(), syms)
        }
        _ => None,
    };
    let outs = match (inlined, ins) {
        (Some(outs), _) => outs,
        (None, Some(ins)) => eval_node(terms, node, opset, &ins),
        (None, None) => fresh(terms, node.outputs().len()),
    };
    for (v, s) in node.outputs().iter().zip(outs) {
        if let Some(v) = v {
            syms.insert(g.value(*v).name().to_string(), s);
        }
    }
}

/// An `If` whose condition is a known constant is the branch it takes: that branch's
/// outputs, evaluated on the values it sees (`visible`). None when the condition is not
/// known.
fn eval_if(
    terms: &mut Terms,
    node: &Node,
    opset: i64,
    cond: Option<&Sym>,
    visible: &HashMap<String, Sym>,
) -> Option<Vec<Sym>> {
    let c = cond?.const_ints().filter(|c| c.len() == 1)?;
    let name = if c[0] != 0 {
        "then_branch"
    } else {
        "else_branch"
    };
    let branch = node.attr(name)?.g.as_deref()?;
    let mut env = visible.clone();
    for v in branch.initializers() {
        if let Some(t) = branch.value(*v).initializer() {
            env.insert(
                branch.value(*v).name().to_string(),
                tensor_sym(terms, t, None),
            );
        }
    }
    for n in branch.nodes_in_order().ok()? {
        eval_into(terms, branch, n, opset, &mut env);
    }
    let outs: Option<Vec<Sym>> = branch
        .outputs()
        .iter()
        .map(|v| env.get(branch.value(*v).name()).cloned())
        .collect();
    outs.filter(|o| o.len() == node.outputs().len())
}

/// Names the `nodes` define that the rest of `g` reads or that are graph outputs.
fn handed_on(g: &Graph, nodes: &[NodeId]) -> Vec<String> {
    let inside: HashSet<NodeId> = nodes.iter().copied().collect();
    nodes
        .iter()
        .flat_map(|n| g.node(*n).outputs().iter().flatten())
        .filter(|v| {
            g.is_output(**v)
                || g.value(**v)
                    .uses()
                    .iter()
                    .any(|u| !inside.contains(&u.node))
        })
        .map(|v| g.value(*v).name().to_string())
        .collect()
}

/// A graph input: its declared type; each open dim its own symbol.
pub(crate) fn input_sym(
    terms: &mut Terms,
    name: &str,
    ty: Option<&whittle_ir::Type>,
    next: &mut u32,
) -> Sym {
    let shape: Option<Vec<Option<Poly>>> = ty.and_then(|t| t.dims()).map(|dims| {
        dims.iter()
            .map(|d| match d {
                whittle_ir::Dim::Known(k) if *k >= 0 => Some(Poly::constant(*k)),
                _ => {
                    *next += 1;
                    Some(Poly::symbol(*next - 1))
                }
            })
            .collect()
    });
    let dims = shape.as_ref().and_then(|s| s.iter().cloned().collect());
    Sym {
        dtype: ty.and_then(|t| t.elem()).map_or(0, |e| e.code()),
        term: terms.intern(Term::Leaf(format!("in:{name}")), dims),
        shape,
        ints: None,
        splat: None,
    }
}

/// A constant: a small integer tensor is its elements; anything else is a leaf named by
/// its type, dims and digest (computed only when `digest` is not given).
pub fn tensor_sym(terms: &mut Terms, t: &Tensor, digest: Option<String>) -> Sym {
    let dtype = t.dtype().code();
    let dims: Vec<Poly> = t.dims.iter().map(|d| Poly::constant(*d)).collect();
    let small = t.element_count().is_ok_and(|n| n <= MAX_INTS);
    let ints: Option<Vec<Poly>> = (tracked(dtype) && small)
        .then(|| tensor_ints(t))
        .flatten()
        .map(|v| v.into_iter().map(Poly::constant).collect());
    let term = match &ints {
        Some(v) => terms.intern(
            Term::Value(dtype, dims.clone(), v.clone()),
            Some(dims.clone()),
        ),
        None => {
            let sha = digest.unwrap_or_else(|| tensor_digest(t));
            let key = format!("t:{dtype}:{:?}:{sha}", t.dims);
            let id = terms.intern(Term::Leaf(key), Some(dims.clone()));
            terms.set_data(id, t.clone(), sha);
            id
        }
    };
    let splat = splat(t, ints.as_deref());
    if let Some(v) = splat {
        terms.set_splat(term, v);
    }
    Sym {
        dtype,
        shape: Some(dims.into_iter().map(Some).collect()),
        splat,
        ints,
        term,
    }
}

/// Float constants up to this many elements are read to see whether all are equal.
const MAX_SPLAT: u64 = 1 << 16;

/// The value all of `t`'s elements have, if they are all equal.
fn splat(t: &Tensor, ints: Option<&[Poly]>) -> Option<f64> {
    let all = |v: Vec<f64>| {
        let first = *v.first()?;
        v.iter()
            .all(|x| x.to_bits() == first.to_bits())
            .then_some(first)
    };
    if let Some(v) = ints {
        return all(v
            .iter()
            .map(|p| p.as_const().map(|c| c as f64))
            .collect::<Option<_>>()?);
    }
    if !t.dtype().is_float() || t.element_count().ok()? > MAX_SPLAT {
        return None;
    }
    all(t.to_f32_vec().ok()?.into_iter().map(f64::from).collect())
}

/// The elements of an int32, int64 or bool tensor.
fn tensor_ints(t: &Tensor) -> Option<Vec<i64>> {
    match t.dtype().code() {
        9 => Some(
            t.le_bytes()
                .ok()?
                .iter()
                .map(|b| i64::from(*b != 0))
                .collect(),
        ),
        _ => t.to_i64_vec().ok(),
    }
}

/// `n` outputs equal to nothing.
fn fresh(terms: &mut Terms, n: usize) -> Vec<Sym> {
    (0..n)
        .map(|_| Sym {
            dtype: 0,
            shape: None,
            ints: None,
            term: terms.fresh(),
            splat: None,
        })
        .collect()
}

/// The outputs of `node` (an op of the standard domain at `opset`) on `ins` (None: an
/// omitted input). Ops of other domains, random ops and ops with subgraphs equal nothing.
pub fn eval_node(terms: &mut Terms, node: &Node, opset: i64, ins: &[Option<&Sym>]) -> Vec<Sym> {
    let n = node.outputs().len();
    let standard = matches!(node.domain(), "" | "ai.onnx");
    if node.has_subgraphs() || !standard || random(node, ins) {
        return fresh(terms, n);
    }
    if node.op() == "Constant" {
        return match constant_tensor(node) {
            Some(t) => vec![tensor_sym(terms, &t, None)],
            None => fresh(terms, n),
        };
    }
    if let Some(t) = super::fold::fold(terms, node, ins) {
        return vec![tensor_sym(terms, &t, None)];
    }
    let outs = semantics(terms, node, ins);
    let input_terms = canonical_inputs(node, ins);
    let mut attrs: Vec<String> = node.attributes.iter().map(attribute_text).collect();
    attrs.sort();
    // The output count is part of the op: Split without sizes splits by it.
    let op = format!("{}@{opset}/{n}", node.op());
    let mut syms: Vec<Sym> = (0..n)
        .map(|i| {
            let out = outs.get(i).cloned().unwrap_or_default();
            finish(terms, out, || {
                Term::App(op.clone(), attrs.clone(), input_terms.clone(), i)
            })
        })
        .collect();
    let fill = constant_fill(node).or_else(|| moved_splat(node, ins));
    if let (Some(fill), Some(s)) = (fill, syms.first_mut()) {
        terms.set_splat(s.term, fill);
        s.splat = Some(fill);
    }
    syms
}

/// The one value every element of a data-movement op's output has, when every element
/// of its data input has it (a reshaped or expanded constant fill).
fn moved_splat(node: &Node, ins: &[Option<&Sym>]) -> Option<f64> {
    let moves = [
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Expand",
        "Transpose",
        "Identity",
        "Tile",
        "Slice",
        "Gather",
    ];
    if !moves.contains(&node.op()) {
        return None;
    }
    ins.first().copied().flatten()?.splat
}

/// The one value a `ConstantOfShape` fills with (0 without a `value`).
fn constant_fill(node: &Node) -> Option<f64> {
    if node.op() != "ConstantOfShape" {
        return None;
    }
    match node.attr("value").and_then(|a| a.t.as_deref()) {
        None => Some(0.0),
        Some(t) => {
            let v = t.to_f32_vec().ok()?;
            (v.len() == 1).then(|| f64::from(v[0]))
        }
    }
}

/// The input terms an op's term is built from, with inputs that are their default
/// written out dropped: a recurrent op's zero bias, initial state or peepholes (ONNX's
/// defaults are zeros), a Concat input with nothing on the axis, and omitted trailing
/// inputs.
fn canonical_inputs(node: &Node, ins: &[Option<&Sym>]) -> Vec<Option<TermId>> {
    let zero_default: &[usize] = match node.op() {
        "LSTM" => &[3, 5, 6, 7],
        "GRU" | "RNN" => &[3, 5],
        _ => &[],
    };
    let concat_axis = (node.op() == "Concat")
        .then(|| super::attr_i(node, "axis"))
        .flatten();
    let empty = |s: &Sym| -> bool {
        let Some(d) = s.shape.as_ref() else {
            return false;
        };
        let a = concat_axis.and_then(|a| super::axis(a, d.len()));
        a.is_some_and(|a| d[a].as_ref().and_then(Poly::as_const) == Some(0))
    };
    let mut out: Vec<Option<TermId>> = ins
        .iter()
        .enumerate()
        .filter(|(_, s)| !(concat_axis.is_some() && s.is_some_and(empty)))
        .map(|(i, s)| match s {
            Some(s) if zero_default.contains(&i) && s.splat == Some(0.0) => None,
            s => s.map(|s| s.term),
        })
        .collect();
    while out.last() == Some(&None) {
        out.pop();
    }
    out
}

/// An output's Sym: a known integer tensor is its value; an identity is its term; else
/// the op applied.
fn finish(terms: &mut Terms, out: Out, app: impl FnOnce() -> Term) -> Sym {
    let dims: Option<Vec<Poly>> = out.shape.as_ref().and_then(|s| s.iter().cloned().collect());
    let count: Option<i64> = dims
        .as_ref()
        .and_then(|d| d.iter().map(Poly::as_const).product::<Option<i64>>());
    let ints = out
        .ints
        .filter(|v| tracked(out.dtype) && count == Some(v.len() as i64));
    let term = match (&ints, out.term) {
        (Some(v), _) => {
            let d = dims.clone().unwrap_or_default();
            terms.intern(Term::Value(out.dtype, d.clone(), v.clone()), Some(d))
        }
        (None, Some(t)) => t,
        (None, None) => terms.intern(app(), dims),
    };
    Sym {
        dtype: out.dtype,
        shape: out.shape,
        splat: ints
            .as_deref()
            .and_then(|v| {
                let c = v.first()?.as_const()?;
                v.iter()
                    .all(|p| p.as_const() == Some(c))
                    .then_some(c as f64)
            })
            .or_else(|| terms.splat(term)),
        ints,
        term,
    }
}

/// A Constant node's value as a tensor (`value`, `value_int(s)`, `value_float(s)`).
fn constant_tensor(node: &Node) -> Option<Tensor> {
    let a = node.attributes.first()?;
    match a.name() {
        "value" => a.t.as_deref().cloned(),
        "value_int" => Some(Tensor::from_i64(vec![], &[a.i?])),
        "value_ints" => Some(Tensor::from_i64(vec![a.ints.len() as i64], &a.ints)),
        "value_float" => Some(Tensor::from_f32(vec![], &[a.f?])),
        "value_floats" => Some(Tensor::from_f32(vec![a.floats.len() as i64], &a.floats)),
        _ => None,
    }
}

/// The checker's semantics of a standard op: one [`Out`] per output it knows.
fn semantics(terms: &mut Terms, node: &Node, ins: &[Option<&Sym>]) -> Vec<Out> {
    let at = |i: usize| ins.get(i).copied().flatten();
    let Some(x) = at(0) else {
        return match node.op() {
            "Range" => vec![shape_ops::range(ins)],
            _ => Vec::new(),
        };
    };
    let op = node.op();
    let one = match op {
        "Identity" | "Dropout" => Out::identity(x),
        "Cast" => arith::cast(node, x),
        "Shape" => shape_ops::shape(node, x),
        "Size" => shape_ops::size(x),
        "Reshape" => shape_ops::reshape(node, terms, x, at(1)),
        "Flatten" => shape_ops::flatten(node, terms, x),
        "Squeeze" => shape_ops::squeeze(node, terms, x, at(1)),
        "Unsqueeze" => shape_ops::unsqueeze(node, terms, x, at(1)),
        "Concat" => shape_ops::concat(node, ins),
        "Gather" => shape_ops::gather(node, x, at(1)),
        "GatherElements" => Out::float(x.dtype, at(1).and_then(|i| i.shape.clone())),
        "Transpose" => shape_ops::transpose(node, terms, x),
        "Expand" => shape_ops::expand(x, at(1)),
        "Slice" => shape_ops::slice(node, terms, x, ins),
        "ConstantOfShape" => shape_ops::constant_of_shape(node, Some(x)),
        "Range" => shape_ops::range(ins),
        "Where" => match (at(1), at(2)) {
            (Some(a), Some(b)) => arith::where_(x, a, b),
            _ => Out::unknown(),
        },
        "GlobalAveragePool" | "GlobalMaxPool" => nn::global_pool(x),
        "Split" if node.outputs().len() == 1 => Out::identity(x),
        "Split" => return nn::split(node, x, at(1), node.outputs().len()),
        "CastLike" => match at(1) {
            Some(t) if x.dtype != 0 && t.dtype == x.dtype => Out::identity(x),
            Some(t) => Out::float(t.dtype, x.shape.clone()),
            None => Out::unknown(),
        },
        op if op.starts_with("Reduce") || op == "ArgMax" || op == "ArgMin" => {
            nn::reduce(op, node, x, at(1))
        }
        op if BINARY.contains(&op) => at(1).map_or_else(Out::unknown, |b| arith::binary(op, x, b)),
        op if UNARY.contains(&op) => arith::unary(op, x),
        _ => return compute(node, x, ins),
    };
    vec![one]
}

/// The checker's dims of the compute ops (matrix products, windows, recurrences,
/// quantization): one [`Out`] per output it knows.
fn compute(node: &Node, x: &Sym, ins: &[Option<&Sym>]) -> Vec<Out> {
    let at = |i: usize| ins.get(i).copied().flatten();
    let one = match node.op() {
        "MatMul" => at(1).map_or_else(Out::unknown, |b| nn::matmul(x, b)),
        "Gemm" => at(1).map_or_else(Out::unknown, |b| nn::gemm(node, x, b)),
        "Conv" => nn::window(node, x, at(1)),
        "ConvInteger" => nn::window(node, x, at(1)).typed(6),
        "MatMulInteger" => at(1).map_or_else(Out::unknown, |b| nn::matmul(x, b).typed(6)),
        "MaxPool" if node.outputs().len() == 2 => {
            let o = nn::window(node, x, None);
            return vec![o.clone(), Out::float(7, o.shape)];
        }
        "MaxPool" | "AveragePool" | "LpPool" => nn::window(node, x, None),
        "ConvTranspose" => nn::conv_transpose(node, x, at(1)),
        "Pad" => nn::pad(node, x, at(1), at(3)),
        "TopK" => return nn::top_k(node, x, at(1)),
        "Resize" => nn::resize(x, at(2), at(3)),
        "LSTM" | "GRU" | "RNN" => return nn::recurrent(node, x, node.outputs().len()),
        "DequantizeLinear" => Out::float(at(1).map_or(1, |s| s.dtype), x.shape.clone()),
        "QuantizeLinear" => Out::float(at(2).map_or(2, |z| z.dtype), x.shape.clone()),
        "DynamicQuantizeLinear" => {
            let scalar = Some(Vec::new());
            return vec![
                Out::float(2, x.shape.clone()),
                Out::float(1, scalar.clone()),
                Out::float(2, scalar),
            ];
        }
        "ScatterElements" | "ScatterND" | "ReverseSequence" | "Trilu" | "CumSum" => {
            Out::float(x.dtype, x.shape.clone())
        }
        _ => return Vec::new(),
    };
    vec![one]
}

impl Out {
    /// `x` itself (an identity).
    fn identity(x: &Sym) -> Out {
        Out {
            dtype: x.dtype,
            shape: x.shape.clone(),
            ints: x.ints.clone(),
            term: Some(x.term),
        }
    }
}

/// Whether `node`'s outputs are random: a random op, or a Dropout that may be training
/// (`is_test = 0` before opset 7, a `training_mode` input not known to be false). A
/// Dropout outside training is the identity on its first output.
fn random(node: &Node, ins: &[Option<&Sym>]) -> bool {
    match node.op() {
        "Dropout" => {
            let training = ins.get(2).copied().flatten();
            super::attr_i(node, "is_test") == Some(0)
                || training.is_some_and(|t| t.const_ints() != Some(vec![0]))
        }
        op => RANDOM.contains(&op),
    }
}

/// Element-wise binary ops (broadcast dims).
const BINARY: [&str; 17] = [
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Mod",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "PRelu",
];

/// Ops whose output has their first input's dims.
const UNARY: [&str; 37] = [
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Erf",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Not",
    "IsNaN",
    "IsInf",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Celu",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Softsign",
    "Gelu",
    "Mish",
    "Clip",
    "ThresholdedRelu",
    "LayerNormalization",
    "BatchNormalization",
    "InstanceNormalization",
];
