//! The per-channel region between a pruned layer and the layers that read its channels:
//! the nodes through which channel c of the producer only ever affects channel c
//! (activations, BatchNormalization, per-channel bias and scale, pooling, Pad that leaves
//! the channel axis alone), ending in the values the readers take in — one consumer,
//! possibly through a Flatten into a dense layer; several (the channels fan out, each
//! reader loses the same ones); or one input of a Concat along the channel axis, where
//! the channels become one part of a wider channel axis ([`group`](super::group) joins
//! the parts).
//!
//! Guards: every node reading a region value must be such a node or a reader; every
//! non-constant input of a region node must itself be in the region (a residual Add
//! joining another branch ends the search: those channels are tied to the other branch
//! and the group is left alone); no region value is a graph output; every constant that
//! is sliced is read by its node alone; a Flatten or a Concat is the only way out when
//! there is one.

use std::collections::{HashSet, VecDeque};
use whittle_ir::{Graph, NodeId, Slot, ValueId};
use whittle_passes::guard::{const_ints, is_op};

/// Unary ops that act element by element.
pub(super) const UNARY: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Swish",
    "Tanh",
    "Erf",
    "Gelu",
    "Elu",
    "Selu",
    "Celu",
    "Softplus",
    "Softsign",
    "Mish",
    "Identity",
    "Abs",
    "Neg",
    "Exp",
    "ThresholdedRelu",
    "Clip",
];

/// Binary element-wise ops (the other input: in the region, or a per-channel constant).
pub(super) const BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"];

/// Pooling: per channel over the spatial axes (NCHW only).
const POOL: &[&str] = &[
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LpPool",
];

/// The region of one group.
#[derive(Clone, Debug)]
pub struct Region {
    /// Per-channel nodes, in graph order.
    pub nodes: Vec<NodeId>,
    /// Values carrying the channels (the producer's output first).
    pub values: Vec<ValueId>,
    /// Constants with a channel axis, to be sliced: (node, input slot, axis of the
    /// constant, entries per channel along it). By slot, not value: another group's
    /// refit may replace the constant.
    pub slices: Vec<(NodeId, usize, usize, usize)>,
    /// Declared dims that follow the kept count besides `values` at the layout's axis:
    /// (value, axis, entries per channel).
    pub dims: Vec<(ValueId, usize, usize)>,
    /// Shape entries that spell the channel count out (a head count in a Reshape
    /// target): (node, input slot of the integer constant, index in it, entries per
    /// channel).
    pub counts: Vec<(NodeId, usize, usize, usize)>,
    /// The value the consumer reads.
    pub end: ValueId,
    /// A Flatten(axis=1) between the region and a dense consumer.
    pub flatten: Option<NodeId>,
    /// The Concat (along the channel axis) and its input slot that `end` feeds, when the
    /// region ends in a Concat rather than a consumer.
    pub concat: Option<(NodeId, usize)>,
    /// Every layer reading the channels, with the value it reads (`end` is the first's):
    /// one, or several when the channels fan out (SqueezeNet's squeeze conv feeds two
    /// expand convs). Empty when the region ends in a Concat.
    pub readers: Vec<(ValueId, NodeId)>,
}

/// Where the channels are: `rank` of the producer's output and its channel `axis`.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub rank: usize,
    pub axis: usize,
    pub channels: usize,
}

/// Walks the region from `start` (the producer's output); Err says why the group is
/// left alone. `is_consumer(node, value)` tells whether a node reading `value` is a layer
/// that can absorb the channels (the end of the region).
pub fn walk(
    g: &Graph,
    start: ValueId,
    layout: Layout,
    is_consumer: &dyn Fn(NodeId, ValueId) -> bool,
) -> Result<Region, String> {
    let mut r = Region {
        nodes: Vec::new(),
        values: vec![start],
        slices: Vec::new(),
        dims: Vec::new(),
        counts: Vec::new(),
        end: start,
        flatten: None,
        concat: None,
        readers: Vec::new(),
    };
    let mut ends = Vec::new();
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        if g.is_output(v) {
            return Err(format!("'{}' is a graph output", g.value(v).name()));
        }
        for u in g.value(v).uses() {
            let Slot::Input(slot) = u.slot else {
                return Err(format!("'{}' is read by a subgraph", g.value(v).name()));
            };
            if (is_consumer(u.node, v) && slot == 0) || joins_channels(g, u.node, layout) {
                ends.push((v, u.node, slot as usize));
                continue;
            }
            if !seen.insert(u.node) {
                continue;
            }
            step(g, u.node, layout, &mut r)?;
            if is_op(g.node(u.node), "Flatten") {
                let y = single_output(g, u.node)?;
                let flat_ends: Vec<_> = g.value(y).uses().iter().map(|u| u.node).collect();
                if flat_ends.len() != 1 || !is_consumer(flat_ends[0], y) || g.is_output(y) {
                    return Err("the Flatten does not feed one dense layer".into());
                }
                r.flatten = Some(u.node);
                ends.push((y, flat_ends[0], 0));
                continue;
            }
            let y = single_output(g, u.node)?;
            r.values.push(y);
            queue.push_back(y);
        }
    }
    finish(g, r, ends)
}

/// A Concat along the layout's channel axis: its inputs are parts of its output's
/// channels.
fn joins_channels(g: &Graph, n: NodeId, layout: Layout) -> bool {
    let node = g.node(n);
    let Some(axis) = node.attr("axis").and_then(|a| a.i) else {
        return false;
    };
    let rank = layout.rank as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    is_op(node, "Concat") && axis == layout.axis as i64
}

/// Checks the end and that every region node reads only region values and constants.
fn finish(g: &Graph, mut r: Region, ends: Vec<(ValueId, NodeId, usize)>) -> Result<Region, String> {
    let joined = ends.iter().any(|e| is_op(g.node(e.1), "Concat"));
    match ends[..] {
        [] => return Err("the channels reach no layer".into()),
        [(end, node, slot)] => {
            if g.value(end).uses().len() != 1 {
                return Err("the consumer's input is read elsewhere too".into());
            }
            if joined {
                r.concat = Some((node, slot));
            }
        }
        _ if joined || r.flatten.is_some() => {
            return Err(format!(
                "the channels reach {} layers, one through a {}",
                ends.len(),
                if joined { "Concat" } else { "Flatten" }
            ));
        }
        _ => {}
    }
    r.end = ends[0].0;
    if r.concat.is_none() {
        r.readers = ends.iter().map(|e| (e.0, e.1)).collect();
    }
    let inside: HashSet<ValueId> = r.values.iter().copied().collect();
    for n in &r.nodes {
        for x in g.node(*n).inputs().iter().flatten() {
            if !inside.contains(x) && g.constant(*x).is_none() {
                return Err(format!(
                    "'{}' joins another branch (channels tied to it)",
                    g.node(*n).label()
                ));
            }
        }
    }
    let order = g.nodes_in_order().map_err(|e| e.to_string())?;
    r.nodes.sort_by_key(|n| order.iter().position(|m| m == n));
    Ok(r)
}

fn single_output(g: &Graph, n: NodeId) -> Result<ValueId, String> {
    let node = g.node(n);
    match node.outputs() {
        [Some(y)] => Ok(*y),
        [Some(y), rest @ ..]
            if rest
                .iter()
                .all(|o| o.is_none_or(|v| g.value(v).uses().is_empty() && !g.is_output(v))) =>
        {
            Ok(*y)
        }
        _ => Err(format!(
            "'{}' has more than one output in use",
            node.label()
        )),
    }
}

/// Accepts node `n` into the region (recording the constants to slice), or says why not.
fn step(g: &Graph, n: NodeId, layout: Layout, r: &mut Region) -> Result<(), String> {
    let node = g.node(n);
    let op = node.op();
    let no = || Err(format!("'{}' ({op}) mixes channels", node.label()));
    if !node.domain().is_empty() {
        return no();
    }
    let spatial = layout.rank == 4 && layout.axis == 1;
    let ok = if UNARY.contains(&op) {
        unary_params(g, n, layout, r)
    } else if BINARY.contains(&op) {
        binary_params(g, n, layout, r)
    } else if op == "BatchNormalization" && spatial {
        per_channel_inputs(g, n, 1..5, 0, layout, r)
    } else if POOL.contains(&op) || (op == "Flatten" && spatial) {
        Ok(spatial && (op != "Flatten" || node.attr("axis").and_then(|a| a.i).unwrap_or(1) == 1))
    } else if op == "Pad" {
        Ok(pad_keeps_channels(g, n, layout))
    } else {
        Ok(false)
    }?;
    if !ok {
        return no();
    }
    r.nodes.push(n);
    Ok(())
}

/// Clip's bounds and LeakyRelu-style attributes are per-tensor; PRelu's slope may be
/// per channel.
fn unary_params(g: &Graph, n: NodeId, layout: Layout, r: &mut Region) -> Result<bool, String> {
    let node = g.node(n);
    match node.op() {
        "PRelu" => per_channel_inputs(g, n, 1..2, usize::MAX, layout, r),
        "Clip" => Ok(node.inputs().iter().skip(1).flatten().all(|v| {
            g.constant(*v)
                .is_some_and(|t| t.element_count().is_ok_and(|c| c == 1))
        })),
        _ => Ok(node.inputs().len() == 1),
    }
}

fn binary_params(g: &Graph, n: NodeId, layout: Layout, r: &mut Region) -> Result<bool, String> {
    let node = g.node(n);
    if node.inputs().len() != 2 {
        return Ok(false);
    }
    // Only the exponent of Pow may be a constant, and only a scalar one.
    if node.op() == "Pow" {
        return Ok(node
            .input(1)
            .and_then(|v| g.constant(v))
            .is_some_and(|t| t.element_count().is_ok_and(|c| c == 1)));
    }
    per_channel_inputs(g, n, 0..2, usize::MAX, layout, r)
}

/// Records the constants among inputs `slots` of `n`: each must broadcast per channel
/// (every dim 1 except, possibly, the channel axis, which is sliced). `fixed_axis` is
/// the constant's channel axis when it is fixed by the op (BatchNormalization's vectors),
/// else `usize::MAX` (right-aligned broadcasting against the region value).
pub(super) fn per_channel_inputs(
    g: &Graph,
    n: NodeId,
    slots: std::ops::Range<usize>,
    fixed_axis: usize,
    layout: Layout,
    r: &mut Region,
) -> Result<bool, String> {
    per_unit_inputs(g, n, slots, fixed_axis, layout, 1, r)
}

/// [`per_channel_inputs`] where each channel is `unit` entries of the axis (a head's
/// columns); `layout.channels` counts entries.
pub(super) fn per_unit_inputs(
    g: &Graph,
    n: NodeId,
    slots: std::ops::Range<usize>,
    fixed_axis: usize,
    layout: Layout,
    unit: usize,
    r: &mut Region,
) -> Result<bool, String> {
    let node = g.node(n);
    for slot in slots {
        let Some(v) = node.input(slot) else { continue };
        let Some(t) = g.constant(v) else { continue };
        let dims = &t.dims;
        if dims.len() > layout.rank {
            return Ok(false); // would raise the rank (and move the channel axis)
        }
        let axis = if fixed_axis != usize::MAX {
            (dims.len() == 1).then_some(0)
        } else {
            layout.axis.checked_sub(layout.rank - dims.len())
        };
        let sliced = match axis {
            Some(a) if dims.get(a) == Some(&(layout.channels as i64)) && layout.channels > 1 => {
                Some(a)
            }
            _ => None,
        };
        let broadcast = dims
            .iter()
            .enumerate()
            .all(|(i, d)| *d == 1 || Some(i) == sliced);
        if !broadcast {
            return Ok(false);
        }
        if let Some(a) = sliced {
            if g.value(v).uses().len() != 1 || g.inputs().contains(&v) {
                return Err(format!(
                    "the per-channel constant '{}' is shared",
                    g.value(v).name()
                ));
            }
            r.slices.push((n, slot, a, unit));
        }
    }
    Ok(true)
}

/// A Pad (any mode: each pads its own channel) whose pads leave the channel axis alone.
fn pad_keeps_channels(g: &Graph, n: NodeId, layout: Layout) -> bool {
    let node = g.node(n);
    if node.input(3).is_some() {
        return false;
    }
    let pads = match node.attr("pads") {
        Some(a) => a.ints.to_vec(),
        None => match const_ints(g, node.input(1)) {
            Some(p) => p,
            None => return false,
        },
    };
    let value_scalar = node.input(2).is_none_or(|v| {
        g.constant(v)
            .is_some_and(|t| t.element_count().is_ok_and(|c| c <= 1))
    });
    pads.len() == 2 * layout.rank
        && pads[layout.axis] == 0
        && pads[layout.axis + layout.rank] == 0
        && value_scalar
}
