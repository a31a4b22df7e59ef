//! Scaled dot-product attention as decoder exports write it becomes the standard
//! `Attention` (opset ≥ 23): Q·Kᵀ·scale (+ mask), Softmax, ·V, with the KV cache's
//! Concats and grouped-query attention's head repetition folded into the one op.
//!
//! The exporters write the cache as `present = Concat(past, new)` on the sequence axis,
//! repeat each key/value head for grouped-query attention as `Reshape(Expand(Unsqueeze(
//! present, 2)))`, transpose K directly or through a rank-3 Reshape, and split the scale
//! between Q and Kᵀ or apply it to the scores. `Attention(Q, K, V, mask, past_key,
//! past_value)` returns the output and both presents, so the Concats go too.
//!
//! Off by default (`--enable rule:attention`): measured slower in tract on prompts.

use super::layernorm::f32_scalar;
use crate::guard::{const_ints, dims, elem, is_op, producer_op};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{DataType, Dim, Graph, IrError, Node, NodeId, ValueId};

/// Anchored at the MatMul of the attention weights and V. Guards: opset ≥ 23; Q, K and V
/// f32 of rank 4 with known head counts, Q's a multiple of K's and V's, and known head
/// sizes; the head repetition proved by the inferred dims (each kv head repeated
/// Q-heads/KV-heads times, adjacently, as `Attention` repeats them); Softmax over the
/// last axis; scale factors float scalars before the mask; an optional additive float
/// mask of rank 2 to 4, broadcasting over batch and heads only. A NaN guard after the Softmax (`Where(IsNaN(p), 0, p)`,
/// which the exporters add for rows masked entirely with -inf) is dropped only when the
/// mask is `Where` of two finite scalars or absent: the Softmax of finite scores is
/// never NaN (for inputs that are themselves free of NaN and infinity).
pub struct AttentionPattern;

/// One side of the cache (keys or values): past (if any), the new entries, the Concat.
struct Cache {
    past: Option<ValueId>,
    new: ValueId,
    present: ValueId,
    concat: Option<NodeId>,
}

/// What the rewrite needs: the inputs of `Attention`, its attributes, and the nodes
/// between (removed once nothing else reads them).
struct Site {
    q: ValueId,
    k: Cache,
    v: Cache,
    mask: Option<ValueId>,
    scale: f32,
    y: ValueId,
    nodes: Vec<NodeId>,
}

/// `v` without a product or quotient with a float scalar: (base, factor), pushing the node.
fn unscaled(g: &Graph, v: ValueId, nodes: &mut Vec<NodeId>) -> (ValueId, f32) {
    let Some((p, _)) = g.value(v).producer() else {
        return (v, 1.0);
    };
    let node = g.node(p);
    let (Some(a), Some(b)) = (node.input(0), node.input(1)) else {
        return (v, 1.0);
    };
    let found = if is_op(node, "Mul") {
        match (f32_scalar(g, a), f32_scalar(g, b)) {
            (None, Some(s)) => Some((a, s)),
            (Some(s), None) => Some((b, s)),
            _ => None,
        }
    } else if is_op(node, "Div") {
        f32_scalar(g, b).filter(|s| *s != 0.0).map(|s| (a, 1.0 / s))
    } else {
        None
    };
    match found {
        Some((base, s)) => {
            nodes.push(p);
            (base, s)
        }
        None => (v, 1.0),
    }
}

/// The present keys/values behind `v` = `heads` heads: `v` itself, or grouped-query
/// attention's `Reshape(Expand(Unsqueeze(present, [2])))` when present has fewer heads.
fn repeated(g: &Graph, v: ValueId, heads: i64, nodes: &mut Vec<NodeId>) -> Option<ValueId> {
    let vd = dims(g, v)?;
    if vd.len() != 4 || vd[1] != Dim::Known(heads) {
        return None;
    }
    let Some(r) = producer_op(g, v, "Reshape") else {
        return Some(v);
    };
    let e = producer_op(g, g.node(r).input(0)?, "Expand")?;
    let u = producer_op(g, g.node(e).input(0)?, "Unsqueeze")?;
    let present = g.node(u).input(0)?;
    let (pd, ed) = (dims(g, present)?, dims(g, g.node(e).output(0)?)?);
    let Dim::Known(kv) = pd.get(1)?.clone() else {
        return None;
    };
    let known = |d: &Dim| !matches!(d, Dim::Unknown);
    // [B, KV, L, D] → [B, KV, 1, L, D] → [B, KV, r, L, D] → [B, KV·r, L, D].
    let ok = const_ints(g, g.node(u).input(1))? == [2]
        && pd.len() == 4
        && kv > 0
        && heads % kv == 0
        && ed.len() == 5
        && ed[2] == Dim::Known(heads / kv)
        && [(0, 0), (1, 1), (3, 2), (4, 3)]
            .iter()
            .all(|(i, j)| known(&ed[*i]) && ed[*i] == pd[*j])
        && vd[0] == pd[0]
        && vd[2] == pd[2]
        && vd[3] == pd[3];
    ok.then(|| {
        nodes.extend([r, e, u]);
        present
    })
}

/// Kᵀ at `v` ([B, H, D, L]): `Transpose(k, [0, 1, 3, 2])`, or the rank-3 form
/// `Reshape(Transpose(Reshape(k, [-1, L, D]), [0, 2, 1]), [B, H, D, L])`; returns k.
fn transposed(g: &Graph, v: ValueId, nodes: &mut Vec<NodeId>) -> Option<ValueId> {
    if let Some(t) = producer_op(g, v, "Transpose") {
        let perm = g.node(t).attr("perm").map(|a| a.ints.to_vec())?;
        nodes.push(t);
        return (perm == [0, 1, 3, 2]).then(|| g.node(t).input(0)).flatten();
    }
    let r2 = producer_op(g, v, "Reshape")?;
    let t = producer_op(g, g.node(r2).input(0)?, "Transpose")?;
    let r1 = producer_op(g, g.node(t).input(0)?, "Reshape")?;
    let k = g.node(r1).input(0)?;
    let (kd, md, vd) = (dims(g, k)?, dims(g, g.node(r1).output(0)?)?, dims(g, v)?);
    let perm = g.node(t).attr("perm").map(|a| a.ints.to_vec())?;
    let known = |d: &[Dim]| d.iter().all(|x| !matches!(x, Dim::Unknown));
    // The rank-3 middle keeps [L, D] last, so its first dim is B·H and the outer
    // Reshape restores [B, H] in order: a transpose of each head.
    let ok = perm == [0, 2, 1]
        && kd.len() == 4
        && known(&kd)
        && md.len() == 3
        && md[1..] == kd[2..]
        && vd == [kd[0].clone(), kd[1].clone(), kd[3].clone(), kd[2].clone()];
    ok.then(|| {
        nodes.extend([r2, t, r1]);
        k
    })
}

/// The cache behind `present`: `Concat(past, new)` on axis 2 of rank 4, or no cache.
fn cache(g: &Graph, present: ValueId) -> Option<Cache> {
    let Some(c) = producer_op(g, present, "Concat") else {
        return Some(Cache {
            past: None,
            new: present,
            present,
            concat: None,
        });
    };
    let node = g.node(c);
    let axis = node.attr("axis").and_then(|a| a.i)?;
    let new = node.input(1)?;
    let ok = node.inputs().len() == 2 && (axis == 2 || axis == -2);
    ok.then_some(Cache {
        past: node.input(0),
        new,
        present,
        concat: Some(c),
    })
}

/// True when `m` is `Where(c, a, b)` with finite float scalars a and b.
fn finite_mask(g: &Graph, m: ValueId) -> bool {
    producer_op(g, m, "Where").is_some_and(|w| {
        let node = g.node(w);
        [node.input(1), node.input(2)]
            .iter()
            .all(|v| v.and_then(|v| f32_scalar(g, v)).is_some_and(f32::is_finite))
    })
}

/// The weights before the NaN guard, and whether the guard may go (see the rule's doc).
fn unguarded(g: &Graph, p: ValueId, nodes: &mut Vec<NodeId>) -> Option<(ValueId, bool)> {
    let Some(w) = producer_op(g, p, "Where") else {
        return Some((p, false));
    };
    let node = g.node(w);
    let (c, zero, x) = (node.input(0)?, node.input(1)?, node.input(2)?);
    let isnan = producer_op(g, c, "IsNaN")?;
    let ok = g.node(isnan).input(0) == Some(x) && f32_scalar(g, zero) == Some(0.0);
    ok.then(|| {
        nodes.extend([w, isnan]);
        (x, true)
    })
}

/// The MatMul computing the scores at `v`, through a scale.
fn scores_matmul(g: &Graph, v: ValueId) -> Option<NodeId> {
    let (base, _) = unscaled(g, v, &mut Vec::new());
    producer_op(g, base, "MatMul")
}

/// The site anchored at MatMul `n`, with its guards checked.
fn site(g: &Graph, n: NodeId) -> Option<Site> {
    let node = g.node(n);
    if !is_op(node, "MatMul") {
        return None;
    }
    let (p, vr, y) = (node.input(0)?, node.input(1)?, node.output(0)?);
    let mut nodes = vec![n];
    let (p, guarded) = unguarded(g, p, &mut nodes)?;
    let sm = producer_op(g, p, "Softmax")?;
    let axis = g.node(sm).attr("axis").and_then(|a| a.i).unwrap_or(-1);
    nodes.push(sm);
    // A scale after the mask would scale the mask too: only one before it is taken.
    let s = g.node(sm).input(0)?;
    let (scores, mask) = match producer_op(g, s, "Add") {
        Some(a) => {
            nodes.push(a);
            let (x, m) = (g.node(a).input(0)?, g.node(a).input(1)?);
            match scores_matmul(g, x) {
                Some(_) => (x, Some(m)),
                None => (m, Some(x)),
            }
        }
        None => (s, None),
    };
    let (scores, post) = unscaled(g, scores, &mut nodes);
    let mm = producer_op(g, scores, "MatMul")?;
    nodes.push(mm);
    let (q, sq) = unscaled(g, g.node(mm).input(0)?, &mut nodes);
    let (kt, sk) = unscaled(g, g.node(mm).input(1)?, &mut nodes);
    let qd = dims(g, q)?;
    let Some(Dim::Known(heads)) = qd.get(1).cloned() else {
        return None;
    };
    let kr = transposed(g, kt, &mut nodes)?;
    let k = cache(g, repeated(g, kr, heads, &mut nodes)?)?;
    let v = cache(g, repeated(g, vr, heads, &mut nodes)?)?;
    if guarded && !mask.is_none_or(|m| finite_mask(g, m)) {
        return None;
    }
    let site = Site {
        q,
        k,
        v,
        mask,
        scale: sq * sk * post,
        y,
        nodes,
    };
    (site_fits(g, &site, heads) && (axis == -1 || axis == 3)).then_some(site)
}

/// Type and shape guards: f32 rank-4 Q, K, V (and past) with known heads and head
/// sizes, K and V with the same heads dividing Q's, past and new with equal dims but the
/// sequence, a float mask of rank 2 to 4 over one head or all.
fn site_fits(g: &Graph, s: &Site, heads: i64) -> bool {
    let f32s = |v: ValueId| elem(g, v) == Some(DataType::Float);
    let d = |v: ValueId| dims(g, v).filter(|d| d.len() == 4);
    let (Some(qd), Some(kd), Some(vd)) = (d(s.q), d(s.k.new), d(s.v.new)) else {
        return false;
    };
    let kv = &kd[1];
    let past_fits = |c: &Cache, nd: &[Dim]| match c.past {
        None => c.concat.is_none(),
        Some(p) => {
            f32s(p) && d(p).is_some_and(|pd| pd[0] == nd[0] && pd[1] == nd[1] && pd[3] == nd[3])
        }
    };
    // The mask broadcast over the scores [B, H, S, L] in the original: a dim of 1 there
    // is a broadcast, which Attention's mask allows too, but is only taken on the
    // batch and heads axes.
    let one = Dim::Known(1);
    let mask_fits = s.mask.is_none_or(|m| {
        let Some(md) = dims(g, m).filter(|d| (2..=4).contains(&d.len())) else {
            return false;
        };
        let r = md.len();
        let heads_ok = r < 3 || md[r - 3] == one || md[r - 3] == Dim::Known(heads);
        matches!(elem(g, m), Some(DataType::Float))
            && heads_ok
            && (md[r - 2] != one || qd[2] == one)
            && !matches!(md[r - 2], Dim::Unknown)
            && !matches!(md[r - 1], Dim::Unknown | Dim::Known(1))
    });
    let known = |x: &Dim| matches!(x, Dim::Known(n) if *n > 0);
    [s.q, s.k.new, s.v.new].into_iter().all(f32s)
        && known(kv)
        && vd[1] == *kv
        && matches!(kv, Dim::Known(n) if heads % n == 0)
        && known(&qd[3])
        && kd[3] == qd[3]
        && known(&vd[3])
        && kd[2] == vd[2]
        && s.k.past.is_some() == s.v.past.is_some()
        && past_fits(&s.k, &kd)
        && past_fits(&s.v, &vd)
        && mask_fits
        && s.scale.is_finite()
        && s.scale > 0.0
}

impl Rule for AttentionPattern {
    fn name(&self) -> &'static str {
        "attention"
    }

    /// Off: tract runs a 128-token prompt slower with it (median 0.94x over eight runs;
    /// a decode step 1.43x faster), ORT neither (docs/benchmarks.md, "Decoder fusions").
    fn default_on(&self) -> bool {
        false
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        if cx.opset < 23 {
            return None;
        }
        let site = site(g, n)?;
        let name = g.node(n).name.clone();
        Some(Box::new(move |g: &mut Graph| apply(g, site, name)))
    }
}

/// Writes `Attention` for the site: its output replaces y, and it defines both presents
/// in place of the cache Concats; the nodes between go where nothing else reads them.
fn apply(g: &mut Graph, site: Site, name: Option<String>) -> Result<(), IrError> {
    let at = site.nodes[0];
    for c in [site.k.concat, site.v.concat].into_iter().flatten() {
        g.remove_node(c);
    }
    let mut op = Node::new("Attention").with_attr(Attribute::float("scale", site.scale));
    op.name = name;
    let mut inputs = vec![
        Some(site.q),
        Some(site.k.new),
        Some(site.v.new),
        site.mask,
        site.k.past,
        site.v.past,
    ];
    let y = g.fresh_value("attention");
    let mut outputs = vec![Some(y)];
    if site.k.past.is_some() {
        outputs.extend([Some(site.k.present), Some(site.v.present)]);
    }
    while inputs.last() == Some(&None) {
        inputs.pop();
    }
    g.add_node_at(at, op, inputs, outputs)?;
    g.remove_node(at);
    crate::edit::forward(g, site.y, y)?;
    // The nodes between, wherever nothing else reads them (a shape computed from the
    // repeated keys, say, keeps what it reads); repeated until nothing more goes.
    let mut left = site.nodes[1..].to_vec();
    loop {
        let before = left.len();
        left.retain(|k| {
            let unread = g.contains_node(*k)
                && g.node(*k)
                    .outputs()
                    .iter()
                    .flatten()
                    .all(|v| g.value(*v).uses().is_empty() && !g.is_output(*v));
            if unread {
                g.remove_node(*k);
            }
            !unread && g.contains_node(*k)
        });
        if left.len() == before {
            return Ok(());
        }
    }
}
