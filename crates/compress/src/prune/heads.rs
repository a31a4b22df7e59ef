//! Attention-head groups: the query, key and value projections of one attention and the
//! output projection that reads the heads back. Head h is the block of D output columns
//! h·D … h·D+D−1 of each projection and the same D input rows of the output projection;
//! every op in between works on each head alone ([`heads_walk`](super::heads_walk) checks
//! it op by op), so removing a head's columns and rows leaves the other heads computing
//! exactly what they did, and the output projection is refit by least squares like any
//! consumer.
//!
//! Finding them: each dense layer on 3-D (or higher) activations has a forward cone — the
//! nodes its output reaches before a layer reads it. Cones that share a node (the
//! scores `MatMul` joins query and key, the context `MatMul` joins the value) belong to
//! one attention; an attention needs two or more projections and one reader. A lone cone
//! is an FFN's and is left to the channel search. Cones joined only element-wise (no
//! Reshape splits heads out: SwiGLU's `silu(gate) · up`) are a gated FFN, pruned neuron by
//! neuron the same way.
//!
//! Dims come from inference under the data's input shapes: exporters compute attention
//! reshapes at run time, so the declared dims say little.

use super::group::{Group, LeftAlone};
use super::heads_walk::{At, Walk};
use super::region::Layout;
use super::{Kind, PruneError};
use crate::decompose::Data;
use crate::decompose::layer::{Layer, Shape};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use whittle_ir::infer::{InferOptions, Inference, infer};
use whittle_ir::{Dim, Graph, Model, NodeId, Slot, ValueId};
use whittle_passes::guard::is_op;
use whittle_passes::pass::PassCx;

/// Most nodes between the projections and the output projection of one attention.
const MAX_NODES: usize = 256;

/// What the head search found.
#[derive(Default)]
pub struct Found {
    pub groups: Vec<Group>,
    pub alone: Vec<LeftAlone>,
    /// Sites of every projection that belongs to an attention (whatever became of it).
    pub covered: HashSet<String>,
}

/// The nodes a projection's output reaches before a layer reads it.
struct Cone {
    nodes: BTreeSet<NodeId>,
    /// (layer, the value it reads).
    ends: BTreeSet<(usize, ValueId)>,
    /// `Shape` nodes reading values of the cone.
    shapes: BTreeSet<NodeId>,
    /// Why the cone cannot be pruned by head (a value is a graph output, ...).
    problem: Option<String>,
    /// The walk stopped at [`MAX_NODES`].
    overflow: bool,
}

/// Facts of `model` under the input shapes of the first data set.
pub fn concrete_facts(model: &Model, data: &Data) -> Result<Inference, PruneError> {
    let g = &model.graph;
    let inputs = g
        .inputs()
        .iter()
        .filter(|v| g.value(**v).initializer().is_none());
    let input_shapes = match data.sets.first() {
        Some(set) => inputs
            .zip(set)
            .map(|(v, t)| {
                let dims = t.dims.iter().map(|d| Dim::Known(*d)).collect();
                (g.value(*v).name().to_string(), dims)
            })
            .collect(),
        None => Vec::new(),
    };
    let mut m = model.clone();
    infer(&mut m, &InferOptions { input_shapes }).map_err(|e| PruneError::Data(e.to_string()))
}

/// The head groups of `layers` (in `model`) and the gated FFNs (two projections joined
/// element-wise, read by one layer) among `kinds`, and the attentions left alone with
/// the reason.
pub fn find(
    model: &Model,
    layers: &[Layer],
    (facts, kinds): (&Inference, &[Kind]),
    cx: &PassCx,
) -> Found {
    let g = &model.graph;
    let opset = model.opset("").unwrap_or(1);
    let by_node: HashMap<NodeId, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.node, i))
        .collect();
    let mut cones: Vec<(usize, Cone)> = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let rank = g
            .node(l.node)
            .output(0)
            .and_then(|y| facts.fact(y))
            .and_then(|f| f.rank());
        if matches!(l.shape, Shape::Dense(_)) && rank.is_some_and(|r| r >= 3) {
            // A cone that reaches several layers (a residual stream) is no projection's.
            let c = cone(g, layers, &by_node, i);
            if c.ends.len() == 1 && !c.overflow {
                cones.push((i, c));
            }
        }
    }
    let mut found = Found::default();
    for members in attentions(&cones) {
        let producers: Vec<usize> = members.iter().map(|m| cones[*m].0).collect();
        if producers.len() < 2 {
            continue;
        }
        let parts: Vec<&Cone> = members.iter().map(|m| &cones[*m].1).collect();
        let built = match parts.iter().find_map(|c| c.problem.clone()) {
            Some(why) => Err(why),
            None => group(g, layers, (facts, opset), &producers, &parts),
        };
        let kind = built.as_ref().map_or(Kind::Heads, |gr| gr.kind);
        if !kinds.contains(&kind) {
            continue;
        }
        let sites: Vec<&String> = producers.iter().map(|p| &layers[*p].site).collect();
        found.covered.extend(sites.iter().map(|s| s.to_string()));
        let built = match sites.iter().any(|s| cx.denies(kind.rule(), s)) {
            true => Err("excluded".to_string()),
            false => built,
        };
        match built {
            Ok(gr) => found.groups.push(gr),
            Err(why) => found.alone.push(LeftAlone {
                site: sites[0].clone(),
                why: format!("heads: {why}"),
            }),
        }
    }
    found
}

fn cone(g: &Graph, layers: &[Layer], by_node: &HashMap<NodeId, usize>, i: usize) -> Cone {
    let mut c = Cone {
        nodes: BTreeSet::new(),
        ends: BTreeSet::new(),
        shapes: BTreeSet::new(),
        problem: None,
        overflow: false,
    };
    let mut queue: VecDeque<ValueId> = g.node(layers[i].node).output(0).into_iter().collect();
    while let Some(v) = queue.pop_front() {
        if g.is_output(v) {
            c.problem
                .get_or_insert_with(|| format!("'{}' is a graph output", g.value(v).name()));
        }
        for u in g.value(v).uses() {
            let Slot::Input(slot) = u.slot else {
                c.problem.get_or_insert_with(|| {
                    format!("'{}' is read by a subgraph", g.value(v).name())
                });
                continue;
            };
            if let Some(j) = by_node.get(&u.node).filter(|j| layers[**j].x == v)
                && slot == 0
                && *j != i
            {
                c.ends.insert((*j, v));
                continue;
            }
            if is_op(g.node(u.node), "Shape") {
                c.shapes.insert(u.node);
                continue;
            }
            if c.nodes.insert(u.node) {
                if c.nodes.len() > MAX_NODES {
                    c.overflow = true;
                    return c;
                }
                queue.extend(g.node(u.node).outputs().iter().flatten());
            }
        }
    }
    c
}

/// Cones that share a node, as sets of indices into `cones` (union-find).
fn attentions(cones: &[(usize, Cone)]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..cones.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut owner: HashMap<NodeId, usize> = HashMap::new();
    for (i, (_, c)) in cones.iter().enumerate() {
        for n in &c.nodes {
            if let Some(j) = owner.insert(*n, i) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut sets: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..cones.len() {
        let r = root(&mut parent, i);
        sets.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = sets.into_values().collect();
    out.sort();
    out
}

/// The head group of one attention, or why there is none.
fn group(
    g: &Graph,
    layers: &[Layer],
    (facts, opset): (&Inference, i64),
    producers: &[usize],
    cones: &[&Cone],
) -> Result<Group, String> {
    let ends: BTreeSet<(usize, ValueId)> =
        cones.iter().flat_map(|c| c.ends.iter().copied()).collect();
    let [(consumer, end)] = ends.into_iter().collect::<Vec<_>>()[..] else {
        return Err("the projections reach different layers".into());
    };
    let w = common_width(layers, producers)?;
    let (inside, order, read) = cone_nodes(g, cones)?;
    let mut walk = Walk::new(g, facts, opset, w, (&inside, &read), end);
    for p in producers {
        let y = g.node(layers[*p].node).output(0).ok_or("no output")?;
        walk.start(y)?;
    }
    walk.run(&order)?;
    // No Reshape split the width into heads: every op was element-wise, so the
    // projections are a gated FFN's (gate and up) and each column is a neuron.
    let (kind, d) = match walk.d {
        Some(d) => (Kind::Heads, d),
        None => (Kind::Ffn, 1),
    };
    let rank = walk.dims(end)?.len();
    if walk.at.get(&end) != Some(&At::Packed(rank - 1)) {
        return Err("the output projection does not read the heads side by side".into());
    }
    match &layers[consumer].shape {
        Shape::Dense(c) if c.k == w => {}
        _ => {
            return Err(format!(
                "'{}' does not read every head",
                layers[consumer].site
            ));
        }
    }
    let heads = w / d;
    if heads < 2 || heads * d != w {
        return Err(format!("{heads} heads"));
    }
    let Some((&producer, partners)) = producers.split_first() else {
        return Err("no projection".into());
    };
    let partners = partners.to_vec();
    Ok(Group {
        kind,
        producer,
        consumer,
        region: walk.finish(d),
        channels: heads,
        span: d,
        layout: Layout {
            rank,
            axis: rank - 1,
            channels: heads,
        },
        partners,
        unit: d,
        parts: Vec::new(),
        readers: Vec::new(),
    })
}

/// The output width the projections share, or why they cannot be one attention's.
fn common_width(layers: &[Layer], producers: &[usize]) -> Result<usize, String> {
    let width = |i: usize| match &layers[i].shape {
        Shape::Dense(d) => Some(d.n),
        Shape::Conv(_) => None,
    };
    let w = producers
        .first()
        .and_then(|p| width(*p))
        .ok_or("not dense")?;
    if producers.iter().any(|p| width(*p) != Some(w)) {
        return Err("the projections differ in width (grouped-query heads)".into());
    }
    Ok(w)
}

/// The cones' nodes, those nodes in graph order, and the head-tensor shapes they read at
/// run time (each allowed only into the attention's own Reshape targets).
type ConeNodes = (HashSet<NodeId>, Vec<NodeId>, HashSet<ValueId>);

fn cone_nodes(g: &Graph, cones: &[&Cone]) -> Result<ConeNodes, String> {
    let inside: HashSet<NodeId> = cones.iter().flat_map(|c| c.nodes.iter().copied()).collect();
    let order: Vec<NodeId> = g
        .nodes_in_order()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|n| inside.contains(n))
        .collect();
    let shapes: BTreeSet<NodeId> = cones
        .iter()
        .flat_map(|c| c.shapes.iter().copied())
        .collect();
    let read = shape_reads(g, &shapes, &inside)?;
    Ok((inside, order, read))
}

/// Integer ops a head count read at run time may pass through.
const INT_OPS: &[&str] = &[
    "Gather",
    "Slice",
    "Concat",
    "Unsqueeze",
    "Squeeze",
    "Cast",
    "Identity",
    "Mul",
    "Div",
];

/// What the `Shape`s of head tensors feed: integers that may carry the head count, which
/// must end only in the targets of the attention's own Reshapes (where the count read
/// at run time follows a pruning). Anything else reading them (an output, a Range, a
/// computation) would still see the old count, so the attention is left alone.
fn shape_reads(
    g: &Graph,
    shapes: &BTreeSet<NodeId>,
    inside: &HashSet<NodeId>,
) -> Result<HashSet<ValueId>, String> {
    let mut read = HashSet::new();
    for s in shapes {
        let bad = || format!("'{}' reads the head count at run time", g.node(*s).label());
        let mut queue: VecDeque<ValueId> = g.node(*s).output(0).into_iter().collect();
        while let Some(v) = queue.pop_front() {
            if g.is_output(v) {
                return Err(bad());
            }
            read.insert(v);
            for u in g.value(v).uses() {
                let node = g.node(u.node);
                let target =
                    is_op(node, "Reshape") && inside.contains(&u.node) && u.slot == Slot::Input(1);
                if target {
                    continue;
                }
                if !INT_OPS.contains(&node.op()) || !node.domain().is_empty() {
                    return Err(bad());
                }
                queue.extend(
                    node.outputs()
                        .iter()
                        .flatten()
                        .filter(|y| !read.contains(*y)),
                );
            }
        }
    }
    Ok(read)
}
