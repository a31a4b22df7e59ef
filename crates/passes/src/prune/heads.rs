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
//! is an FFN's and is left to the channel search.
//!
//! Dims come from inference under the data's input shapes: exporters compute attention
//! reshapes at run time, so the declared dims say little.

use super::group::{Group, LeftAlone};
use super::heads_walk::{At, Walk};
use super::region::Layout;
use super::{Kind, PruneError};
use crate::decompose::Data;
use crate::decompose::layer::{Layer, Shape};
use crate::guard::{const_ints, is_op};
use crate::pass::PassCx;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use whittle_ir::infer::{InferOptions, Inference, infer};
use whittle_ir::{Dim, Graph, Model, NodeId, Slot, ValueId};

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

/// The head groups of `layers` (in `model`), and the attentions left alone with the
/// reason.
pub fn find(model: &Model, layers: &[Layer], facts: &Inference, cx: &PassCx) -> Found {
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
        let site = layers[producers[0]].site.clone();
        found
            .covered
            .extend(producers.iter().map(|p| layers[*p].site.clone()));
        let why = if producers
            .iter()
            .any(|p| cx.denies(Kind::Heads.rule(), &layers[*p].site))
        {
            Err("excluded".to_string())
        } else {
            let parts: Vec<&Cone> = members.iter().map(|m| &cones[*m].1).collect();
            match parts.iter().find_map(|c| c.problem.clone()) {
                Some(why) => Err(why),
                None => group(g, layers, (facts, opset), &producers, &parts),
            }
        };
        match why {
            Ok(gr) => found.groups.push(gr),
            Err(why) => found.alone.push(LeftAlone {
                site,
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
    let width = |i: usize| match &layers[i].shape {
        Shape::Dense(d) => Some(d.n),
        Shape::Conv(_) => None,
    };
    let w = width(producers[0]).ok_or("not dense")?;
    if producers.iter().any(|p| width(*p) != Some(w)) {
        return Err("the projections differ in width (grouped-query heads)".into());
    }
    let inside: HashSet<NodeId> = cones.iter().flat_map(|c| c.nodes.iter().copied()).collect();
    let order: Vec<NodeId> = g
        .nodes_in_order()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|n| inside.contains(n))
        .collect();
    let mut walk = Walk::new(g, facts, opset, w, &inside, end);
    for p in producers {
        let y = g.node(layers[*p].node).output(0).ok_or("no output")?;
        walk.start(y)?;
    }
    walk.run(&order)?;
    let d = walk.d.ok_or("no Reshape splits the heads out")?;
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
    for s in cones.iter().flat_map(|c| c.shapes.iter()) {
        shape_reader(g, &walk, *s)?;
    }
    let heads = w / d;
    if heads < 2 || heads * d != w {
        return Err(format!("{heads} heads"));
    }
    let mut partners = producers.to_vec();
    let producer = partners.remove(0);
    Ok(Group {
        kind: Kind::Heads,
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
    })
}

/// A `Shape` of a head tensor: only its other dims may be read (`Gather` of a constant
/// index), never the head count.
fn shape_reader(g: &Graph, walk: &Walk, s: NodeId) -> Result<(), String> {
    let node = g.node(s);
    let x = node.input(0).ok_or("no input")?;
    let at = walk.at.get(&x).ok_or("a Shape outside the attention")?;
    let rank = walk.dims(x)?.len() as i64;
    let y = node.output(0).ok_or("no output")?;
    let bad = || format!("'{}' reads the head count at run time", node.label());
    if node.attr("start").is_some() || node.attr("end").is_some() || g.is_output(y) {
        return Err(bad());
    }
    for u in g.value(y).uses() {
        let gather = g.node(u.node);
        let index = const_ints(g, gather.input(1));
        let ok = is_op(gather, "Gather")
            && gather.input(0) == Some(y)
            && gather.attr("axis").and_then(|a| a.i).unwrap_or(0) == 0
            && index.is_some_and(|ix| {
                ix.iter()
                    .all(|i| (if *i < 0 { i + rank } else { *i }) as usize != at.axis())
            });
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}
