//! Rotary position embedding as Llama-style exports write it, `x·cos + rotate_half(x)·sin`
//! with cos and sin built from duplicated halves, becomes the standard `RotaryEmbedding`
//! (opset ≥ 23): one op instead of seven per query or key.
//!
//! The exports compute `cos = Cos(Concat(f, f))` over the last axis and unsqueeze it to
//! `[b, 1, S, D]`; `RotaryEmbedding` (no position ids) takes the half, `[B, S, D/2]`, so
//! the rewrite applies the same elementwise chain to `f` instead. ONNX Runtime requires
//! the cache's batch to equal x's, so a batch-1 cache (positions shared by the batch) is
//! expanded; the batch is read from a graph input with the same symbolic batch, so every
//! layer's expansion is the same node and CSE keeps one.

use super::layernorm::f32_scalar;
use crate::guard::{const_ints, dims, elem, is_op, producer_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{DataType, Dim, Graph, IrError, Node, NodeId, Tensor, ValueId};

/// Anchored at `Add(Mul(x, c), Mul(rotate_half(x), s))`, operands in any order, where
/// rotate_half(x) = `Concat(Neg(Slice(x, D/2..)), Slice(x, 0..D/2))` on the last axis and
/// c, s = `Unsqueeze(chain(Concat(f, f)), [1])` with chain made of Cos, Sin and products
/// with a float scalar. Guards: opset ≥ 23; x float, rank 4 `[B, N, S, D]` with D known
/// and even; c and s of x's type with dims `[b, S, D]` before the Unsqueeze, b = B or 1;
/// every intermediate of the rotation read once and no graph output.
pub struct RotaryPattern;

/// A cos or sin operand: the half `f` it duplicates and the elementwise nodes from the
/// Concat outward, each with the input slot that carries the value.
struct Half {
    f: ValueId,
    chain: Vec<(NodeId, usize)>,
    batch: Dim,
    seq: Dim,
}

/// What the rewrite replaces: x, the two operands, the nodes to remove (anchor last).
struct Site {
    x: ValueId,
    cos: Half,
    sin: Half,
    nodes: Vec<NodeId>,
}

/// The Slice `x[.., lo..hi]` on the last axis of a rank-4 x, with unit step: its x.
fn last_axis_slice(g: &Graph, v: ValueId, lo: i64, hi: i64) -> Option<(ValueId, NodeId)> {
    let p = producer_op(g, v, "Slice")?;
    let node = g.node(p);
    let starts = const_ints(g, node.input(1))?;
    let ends = const_ints(g, node.input(2))?;
    let axes = const_ints(g, node.input(3))?;
    let unit = node.input(4).is_none() || const_ints(g, node.input(4))? == [1];
    let ok = starts == [lo]
        && ends.len() == 1
        && (ends[0] == hi || (hi == i64::MAX && ends[0] >= lo * 2))
        && (axes == [-1] || axes == [3])
        && unit
        && single_use(g, v);
    ok.then_some((node.input(0)?, p))
}

/// rotate_half(x) at `r` for head size `d`: x and the four nodes (Concat, Neg, two Slices).
fn rotate_half(g: &Graph, r: ValueId, d: i64) -> Option<(ValueId, Vec<NodeId>)> {
    let cat = producer_op(g, r, "Concat")?;
    let node = g.node(cat);
    let axis = node.attr("axis").and_then(|a| a.i)?;
    if node.inputs().len() != 2 || !(axis == -1 || axis == 3) || !single_use(g, r) {
        return None;
    }
    let (neg_out, low) = (node.input(0)?, node.input(1)?);
    let neg = producer_op(g, neg_out, "Neg")?;
    if !single_use(g, neg_out) {
        return None;
    }
    let h = d / 2;
    // "Ends at D or beyond": exporters write i64::MAX; `hi == MAX` asks for ends ≥ D.
    let (x, hi_slice) = last_axis_slice(g, g.node(neg).input(0)?, h, i64::MAX)?;
    let (x2, lo_slice) = last_axis_slice(g, low, 0, h)?;
    (x == x2).then(|| (x, vec![cat, neg, hi_slice, lo_slice]))
}

/// The cos/sin operand at `v`: `Unsqueeze(chain(Concat(f, f)), [1])` of rank 3 `[b, S, d]`.
fn duplicated_half(g: &Graph, v: ValueId, d: i64, opset: i64) -> Option<Half> {
    let un = producer_op(g, v, "Unsqueeze")?;
    let axes = match opset {
        ..13 => g.node(un).attr("axes").map(|a| a.ints.to_vec())?,
        _ => const_ints(g, g.node(un).input(1))?,
    };
    let v3 = g.node(un).input(0)?;
    let d3 = dims(g, v3)?;
    if axes != [1] || d3.len() != 3 || d3[2] != Dim::Known(d) {
        return None;
    }
    let mut chain = Vec::new();
    let mut cur = v3;
    for _ in 0..4 {
        let (p, _) = g.value(cur).producer()?;
        let node = g.node(p);
        if is_op(node, "Concat") {
            let axis = node.attr("axis").and_then(|a| a.i)?;
            let (a, b) = (node.input(0)?, node.input(1)?);
            if node.inputs().len() != 2 || a != b || !(axis == -1 || axis == 2) {
                return None;
            }
            chain.reverse();
            let (batch, seq) = (d3[0].clone(), d3[1].clone());
            return Some(Half {
                f: a,
                chain,
                batch,
                seq,
            });
        }
        let slot = if (is_op(node, "Cos") || is_op(node, "Sin")) && node.inputs().len() == 1 {
            0
        } else if is_op(node, "Mul") {
            let (a, b) = (node.input(0)?, node.input(1)?);
            match (f32_scalar(g, a), f32_scalar(g, b)) {
                (None, Some(_)) => 0,
                (Some(_), None) => 1,
                _ => return None,
            }
        } else {
            return None;
        };
        chain.push((p, slot));
        cur = node.input(slot)?;
    }
    None
}

/// The site anchored at the Add `n`, with its guards checked.
fn site(g: &Graph, n: NodeId, opset: i64) -> Option<Site> {
    let add = g.node(n);
    if !is_op(add, "Add") {
        return None;
    }
    let (u, v) = (add.input(0)?, add.input(1)?);
    for (cu, sv) in [(u, v), (v, u)] {
        let (Some(mc), Some(ms)) = (producer_op(g, cu, "Mul"), producer_op(g, sv, "Mul")) else {
            continue;
        };
        if !single_use(g, cu) || !single_use(g, sv) {
            continue;
        }
        let (s0, s1) = (g.node(ms).input(0)?, g.node(ms).input(1)?);
        for (r, s) in [(s0, s1), (s1, s0)] {
            let Some(d) = dims(g, r).and_then(|d| d.last().cloned()) else {
                continue;
            };
            let Dim::Known(d) = d else { continue };
            let Some((x, mut nodes)) = rotate_half(g, r, d) else {
                continue;
            };
            let (c0, c1) = (g.node(mc).input(0)?, g.node(mc).input(1)?);
            let c = match (c0 == x, c1 == x) {
                (true, false) => c1,
                (false, true) => c0,
                _ => continue,
            };
            let cos = duplicated_half(g, c, d, opset)?;
            let sin = duplicated_half(g, s, d, opset)?;
            nodes.extend([mc, ms, n]);
            let site = Site { x, cos, sin, nodes };
            return site_fits(g, &site, [c, s], d).then_some(site);
        }
    }
    None
}

/// Type and shape guards: x float of rank 4 with an even last dim `d`; the operands of
/// x's type, on x's sequence, with x's batch or batch 1.
fn site_fits(g: &Graph, site: &Site, operands: [ValueId; 2], d: i64) -> bool {
    let Some(xd) = dims(g, site.x) else {
        return false;
    };
    let t = elem(g, site.x);
    let float = matches!(
        t,
        Some(DataType::Float | DataType::Float16 | DataType::Bfloat16)
    );
    let known = |x: &Dim| !matches!(x, Dim::Unknown);
    let fits = |h: &Half| {
        known(&h.seq)
            && h.seq == xd[2]
            && (h.batch == Dim::Known(1) || (known(&h.batch) && h.batch == xd[0]))
    };
    xd.len() == 4
        && d > 0
        && d % 2 == 0
        && float
        && operands.iter().all(|o| elem(g, *o) == t)
        && fits(&site.cos)
        && fits(&site.sin)
}

impl Rule for RotaryPattern {
    fn name(&self) -> &'static str {
        "rotary-embedding"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        if cx.opset < 23 {
            return None;
        }
        let site = site(g, n, cx.opset)?;
        let y = g.node(n).output(0)?;
        let xd = dims(g, site.x)?;
        // The batch source: a graph input of the same symbolic batch (shared by every
        // layer, so CSE merges the expansions), else x itself.
        let expand_from = (site.cos.batch != xd[0] || site.sin.batch != xd[0]).then(|| {
            g.inputs()
                .iter()
                .copied()
                .find(|i| {
                    matches!(xd[0], Dim::Param(_))
                        && dims(g, *i).and_then(|d| d.first().cloned()) == Some(xd[0].clone())
                })
                .unwrap_or(site.x)
        });
        let name = g.node(n).name.clone();
        Some(Box::new(move |g: &mut Graph| {
            apply(g, site, y, expand_from, name)
        }))
    }
}

/// Replays the half's chain on `f`, before `at`: the `[b, S, D/2]` cache.
fn replay(g: &mut Graph, at: NodeId, h: &Half) -> Result<ValueId, IrError> {
    let mut cur = h.f;
    for (k, slot) in &h.chain {
        let node = g.node(*k);
        let mut inputs = node.inputs().to_vec();
        inputs[*slot] = Some(cur);
        let op = Node::new(node.op());
        let out = g.fresh_value("rotary_half");
        g.add_node_at(at, op, inputs, vec![Some(out)])?;
        cur = out;
    }
    Ok(cur)
}

/// Broadcasts a batch-1 cache to the batch of `src` (dim 0): `Expand(c, [B, 1, 1])`.
fn expand_batch(g: &mut Graph, at: NodeId, c: ValueId, src: ValueId) -> Result<ValueId, IrError> {
    let b = g.fresh_value("rotary_batch");
    let shape = Node::new("Shape")
        .with_attr(Attribute::int("start", 0))
        .with_attr(Attribute::int("end", 1));
    g.add_node_at(at, shape, vec![Some(src)], vec![Some(b)])?;
    let ones = g.add_initializer("rotary_ones", Tensor::from_i64(vec![2], &[1, 1]));
    let target = g.fresh_value("rotary_target");
    let cat = Node::new("Concat").with_attr(Attribute::int("axis", 0));
    g.add_node_at(at, cat, vec![Some(b), Some(ones)], vec![Some(target)])?;
    let out = g.fresh_value("rotary_cache");
    g.add_node_at(
        at,
        Node::new("Expand"),
        vec![Some(c), Some(target)],
        vec![Some(out)],
    )?;
    Ok(out)
}

/// Writes y with one `RotaryEmbedding(x, cos_half, sin_half)` and removes the site.
fn apply(
    g: &mut Graph,
    site: Site,
    y: ValueId,
    expand_from: Option<ValueId>,
    name: Option<String>,
) -> Result<(), IrError> {
    let at = site.nodes[0];
    let mut cos = replay(g, at, &site.cos)?;
    let mut sin = replay(g, at, &site.sin)?;
    if let Some(src) = expand_from {
        cos = expand_batch(g, at, cos, src)?;
        sin = expand_batch(g, at, sin, src)?;
    }
    for k in &site.nodes {
        g.remove_node(*k);
    }
    let mut op = Node::new("RotaryEmbedding");
    op.name = name;
    g.add_node(op, vec![Some(site.x), Some(cos), Some(sin)], vec![Some(y)])?;
    Ok(())
}
