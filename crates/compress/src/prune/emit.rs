//! Writing a pruning into the graph: the producer keeps only its kept output channels
//! (weight rows, bias, every per-channel constant of the region), and the consumer reads
//! only them with its refit weights and shifted bias. Every change is a new, smaller
//! initializer; declared shapes along the channel axis follow.

use super::group::Group;
use super::region::Region;
use super::select::Refitted;
use crate::decompose::conv::f32_tensor;
use crate::decompose::layer::{Layer, Shape};
use nalgebra::{DMatrix, DVector};
use whittle_ir::types::TypeKind;
use whittle_ir::{Attribute, Dim, Graph, IrError, Node, Tensor, ValueId};

fn weights(g: &Graph, v: ValueId) -> Result<(Vec<i64>, Vec<f32>), IrError> {
    let t = g
        .value(v)
        .initializer()
        .ok_or_else(|| IrError::Invariant(format!("'{}' is not a constant", g.value(v).name())))?;
    Ok((t.dims.clone(), t.to_f32_vec()?))
}

/// The layer's weight as it is now (a refit of another group may have replaced it) and
/// its input slot.
fn current_weight(g: &Graph, l: &Layer) -> Result<(ValueId, usize), IrError> {
    let slot = crate::weighted::weight_slot(g, l.node)
        .map(|s| s.slot)
        .ok_or_else(|| IrError::Invariant(format!("'{}': weight not constant", l.site)))?;
    let v = g
        .node(l.node)
        .input(slot)
        .ok_or_else(|| IrError::Invariant(format!("'{}': no weight", l.site)))?;
    Ok((v, slot))
}

/// The consumer's weight as Cout × n, n = channels·span in the consumer's feature order
/// (Conv: channel-major patches; dense: input features).
pub fn consumer_matrix(g: &Graph, l: &Layer) -> Result<DMatrix<f64>, IrError> {
    let (_, w) = weights(g, l.w)?;
    Ok(match &l.shape {
        Shape::Conv(c) => {
            let n = c.cin * c.taps();
            DMatrix::from_fn(c.cout, n, |o, j| f64::from(w[o * n + j]))
        }
        Shape::Dense(d) if d.trans_b => {
            DMatrix::from_fn(d.n, d.k, |o, i| f64::from(w[o * d.k + i]))
        }
        Shape::Dense(d) => DMatrix::from_fn(d.n, d.k, |o, i| f64::from(w[i * d.n + o])),
    })
}

/// Replaces `v` (an initializer read by one node) by `t` under a fresh name.
fn replace(g: &mut Graph, node: whittle_ir::NodeId, slot: usize, v: ValueId, t: Tensor) {
    let name = g.value(v).name().to_string();
    let nv = g.add_initializer(&format!("{name}_pruned"), t);
    g.set_input(node, slot, Some(nv));
    whittle_passes::edit::drop_if_unused(g, v);
}

/// Writes refit `r` of a layer reading a group's channels, `span` features each.
pub fn consumer(g: &mut Graph, l: &Layer, span: usize, r: &Refitted) -> Result<(), IrError> {
    let k = r.kept.len();
    let p = &r.p;
    let (wv, slot) = current_weight(g, l)?;
    let (dims, _) = weights(g, wv)?;
    let (w, wdims) = match &l.shape {
        Shape::Conv(c) => {
            let cols = k * c.taps();
            let w: Vec<f32> = (0..c.cout * cols)
                .map(|i| p[(i / cols, i % cols)] as f32)
                .collect();
            (w, vec![dims[0], k as i64, dims[2], dims[3]])
        }
        Shape::Dense(d) => {
            let kk = k * span;
            if d.trans_b {
                let w = (0..d.n * kk).map(|i| p[(i / kk, i % kk)] as f32).collect();
                (w, vec![d.n as i64, kk as i64])
            } else {
                let w = (0..kk * d.n)
                    .map(|i| p[(i % d.n, i / d.n)] as f32)
                    .collect();
                (w, vec![kk as i64, d.n as i64])
            }
        }
    };
    replace(g, l.node, slot, wv, f32_tensor(wdims, &w));
    shift_bias(g, l, &r.shift)
}

/// Adds `shift` to the consumer's bias: Conv's B, Gemm's C (scaled by alpha/beta), or a
/// MatMul's following bias Add; else a new Add after the MatMul.
fn shift_bias(g: &mut Graph, l: &Layer, shift: &DVector<f64>) -> Result<(), IrError> {
    if shift.iter().all(|s| *s == 0.0) {
        return Ok(());
    }
    let node = g.node(l.node).clone();
    let n = shift.len();
    let plus = |g: &Graph, v: Option<ValueId>, scale: f64| -> Option<Vec<f32>> {
        let base = match v.and_then(|v| g.constant(v)).map(|t| t.to_f32_vec()) {
            Some(Ok(b)) if b.len() == n => b,
            Some(Ok(b)) if b.len() == 1 => vec![b[0]; n],
            Some(_) => return None,
            None => vec![0.0; n],
        };
        Some(
            base.iter()
                .zip(shift.iter())
                .map(|(b, s)| (f64::from(*b) + s * scale) as f32)
                .collect(),
        )
    };
    let is_gemm = node.op() == "Gemm";
    if node.op() == "Conv" || is_gemm {
        let f = |name: &str| f64::from(node.attr(name).and_then(|a| a.f).unwrap_or(1.0));
        let c = node.input(2);
        let (alpha, beta) = if is_gemm {
            (f("alpha"), f("beta"))
        } else {
            (1.0, 1.0)
        };
        if beta != 0.0 || c.is_none() {
            let beta = if c.is_some() { beta } else { 1.0 };
            if let Some(b) = plus(g, c, alpha / beta) {
                let t = f32_tensor(vec![n as i64], &b);
                let base = crate::decompose::base_name(g, l.node);
                let bv = g.add_initializer(&format!("{base}_bias_pruned"), t);
                g.set_input(l.node, 2, Some(bv));
                if is_gemm && c.is_none() {
                    g.node_mut(l.node).set_attr(Attribute::float("beta", 1.0));
                }
                if let Some(c) = c {
                    whittle_passes::edit::drop_if_unused(g, c);
                }
                return Ok(());
            }
        }
    }
    if following_bias(g, l, shift)? {
        return Ok(());
    }
    add_after(g, l, shift)
}

/// A MatMul read only by `Add(y, b)` with a private constant b of the output width:
/// the shift goes into b. False when there is no such Add.
fn following_bias(g: &mut Graph, l: &Layer, shift: &DVector<f64>) -> Result<bool, IrError> {
    let Some(y) = g.node(l.node).output(0) else {
        return Ok(false);
    };
    let uses = g.value(y).uses();
    if uses.len() != 1 || g.is_output(y) {
        return Ok(false);
    }
    let add = uses[0].node;
    let node = g.node(add);
    if !whittle_passes::guard::is_op(node, "Add") || node.inputs().len() != 2 {
        return Ok(false);
    }
    let slot = if node.input(0) == Some(y) { 1 } else { 0 };
    let Some(b) = node.input(slot) else {
        return Ok(false);
    };
    let n = shift.len();
    let ok = g.constant(b).is_some_and(|t| {
        t.dtype() == whittle_ir::DataType::Float
            && t.dims.last() == Some(&(n as i64))
            && t.dims.iter().rev().skip(1).all(|d| *d == 1)
    }) && g.value(b).uses().len() == 1
        && !g.inputs().contains(&b);
    if !ok {
        return Ok(false);
    }
    let (dims, vals) = weights(g, b)?;
    let out: Vec<f32> = vals
        .iter()
        .zip(shift.iter())
        .map(|(v, s)| (f64::from(*v) + s) as f32)
        .collect();
    replace(g, add, slot, b, f32_tensor(dims, &out));
    Ok(true)
}

/// A new `Add(y, shift)` after the layer's output: its readers (and a graph output of
/// that name) read the Add's result; the layer's node stays as it is.
fn add_after(g: &mut Graph, l: &Layer, shift: &DVector<f64>) -> Result<(), IrError> {
    let y = g
        .node(l.node)
        .output(0)
        .ok_or_else(|| IrError::Invariant("consumer without output".into()))?;
    let base = crate::decompose::base_name(g, l.node);
    let s: Vec<f32> = shift.iter().map(|x| *x as f32).collect();
    let sv = g.add_initializer(
        &format!("{base}_shift"),
        f32_tensor(vec![s.len() as i64], &s),
    );
    let name = g.value(y).name().to_string();
    let y2 = g.fresh_value(&format!("{name}_shifted"));
    g.value_mut(y2).info = g.value(y).info.clone();
    g.replace_all_uses(y, y2);
    g.add_node(
        Node::new("Add").with_name(format!("{base}_shift")),
        vec![Some(y), Some(sv)],
        vec![Some(y2)],
    )?;
    if g.is_output(y2) {
        let mut free = format!("{name}_unshifted");
        while g.find(&free).is_some() {
            free.push('_');
        }
        g.rename_value(y, &free)?;
        g.rename_value(y2, &name)?;
    }
    Ok(())
}

/// Keeps the `kept` output channels of the group's producers and region.
pub fn producer(
    g: &mut Graph,
    layers: &[Layer],
    gr: &Group,
    kept: &[usize],
) -> Result<(), IrError> {
    if !gr.parts.is_empty() {
        return parts(g, layers, gr, kept);
    }
    let features = expand(kept, gr.unit);
    for i in gr.producers() {
        producer_weights(g, &layers[i], gr.channels * gr.unit, &features)?;
    }
    region(g, &gr.region, (gr.layout.axis, gr.channels, gr.span), kept)
}

/// [`producer`] for the parts of a Concat: each part keeps the kept channels in its
/// range; a part left with none leaves the Concat (its layer and region are then read by
/// nothing, and cleanup removes them).
fn parts(g: &mut Graph, layers: &[Layer], gr: &Group, kept: &[usize]) -> Result<(), IrError> {
    let mut dropped = Vec::new();
    for p in &gr.parts {
        let local = p.local(kept);
        if local.is_empty() {
            dropped.extend(p.region.concat.map(|(_, slot)| slot));
            continue;
        }
        producer_weights(g, &layers[p.producer], p.channels, &local)?;
        region(g, &p.region, (p.layout.axis, p.channels, 1), &local)?;
    }
    if let Some((concat, _)) = gr.parts.first().and_then(|p| p.region.concat)
        && !dropped.is_empty()
    {
        let inputs: Vec<_> = g.node(concat).inputs().to_vec();
        let left: Vec<_> = (0..inputs.len())
            .filter(|s| !dropped.contains(s))
            .map(|s| inputs[s])
            .collect();
        for (slot, v) in left.iter().enumerate() {
            g.set_input(concat, slot, *v);
        }
        g.truncate_inputs(concat, left.len());
    }
    region(g, &gr.region, (gr.layout.axis, gr.channels, gr.span), kept)
}

/// Channels `kept`, each `unit` entries wide, as entry indices.
fn expand(kept: &[usize], unit: usize) -> Vec<usize> {
    kept.iter()
        .flat_map(|c| (c * unit)..((c + 1) * unit))
        .collect()
}

/// Keeps output entries `features` (of `width`) of layer `l`: weight and Gemm bias.
fn producer_weights(
    g: &mut Graph,
    l: &Layer,
    width: usize,
    features: &[usize],
) -> Result<(), IrError> {
    let node = g.node(l.node).clone();
    let (wv, slot) = current_weight(g, l)?;
    let (dims, w) = weights(g, wv)?;
    let axis = match &l.shape {
        Shape::Conv(_) => 0,
        Shape::Dense(d) if d.trans_b => 0,
        Shape::Dense(_) => 1,
    };
    replace(g, l.node, slot, wv, slice(&dims, &w, axis, features));
    if let Some(b) = node.input(2)
        && let Some(t) = g.constant(b)
        && t.dims.last() == Some(&(width as i64))
    {
        let (bd, bw) = weights(g, b)?;
        replace(g, l.node, 2, b, slice(&bd, &bw, bd.len() - 1, features));
    }
    Ok(())
}

/// The region's per-channel constants, declared dims and spelled-out counts, for
/// `channels` along `axis` (each read as `span` features by a Flatten).
fn region(
    g: &mut Graph,
    r: &Region,
    (axis, channels, span): (usize, usize, usize),
    kept: &[usize],
) -> Result<(), IrError> {
    for (n, slot, a, unit) in &r.slices {
        let v = g
            .node(*n)
            .input(*slot)
            .ok_or_else(|| IrError::Invariant("per-channel constant moved".into()))?;
        let (cd, cw) = weights(g, v)?;
        replace(g, *n, *slot, v, slice(&cd, &cw, *a, &expand(kept, *unit)));
    }
    let (c, k) = (channels as i64, kept.len() as i64);
    for v in &r.values {
        set_dim(g, *v, axis, c, k);
    }
    for (v, axis, unit) in &r.dims {
        let u = *unit as i64;
        set_dim(g, *v, *axis, c * u, k * u);
    }
    if let Some(f) = r.flatten
        && let Some(y) = g.node(f).output(0)
    {
        let span = span as i64;
        set_dim(g, y, 1, c * span, k * span);
    }
    for (n, slot, index, unit) in &r.counts {
        let v = g
            .node(*n)
            .input(*slot)
            .ok_or_else(|| IrError::Invariant("shape constant moved".into()))?;
        let t = g.constant(v).ok_or_else(|| {
            IrError::Invariant(format!("'{}' is not a constant", g.value(v).name()))
        })?;
        let mut ints = t.to_i64_vec()?;
        let dims = t.dims.clone();
        let u = *unit as i64;
        match ints.get_mut(*index) {
            Some(e) if *e == c * u => *e = k * u,
            _ => {
                return Err(IrError::Invariant(format!(
                    "'{}' no longer holds the count {}",
                    g.value(v).name(),
                    c * u
                )));
            }
        }
        let name = g.value(v).name().to_string();
        let nv = g.add_initializer(&format!("{name}_pruned"), Tensor::from_i64(dims, &ints));
        g.set_input(*n, *slot, Some(nv));
        whittle_passes::edit::drop_if_unused(g, v);
    }
    Ok(())
}

/// `values` (dims `dims`) with only indices `kept` along `axis`.
fn slice(dims: &[i64], values: &[f32], axis: usize, kept: &[usize]) -> Tensor {
    let outer: usize = dims[..axis].iter().product::<i64>().max(1) as usize;
    let inner: usize = dims[axis + 1..].iter().product::<i64>().max(1) as usize;
    let n = dims[axis] as usize;
    let mut out = Vec::with_capacity(outer * kept.len() * inner);
    for o in 0..outer {
        for &c in kept {
            let start = (o * n + c) * inner;
            out.extend_from_slice(&values[start..start + inner]);
        }
    }
    let mut nd = dims.to_vec();
    nd[axis] = kept.len() as i64;
    f32_tensor(nd, &out)
}

/// Declared dim `axis` of `v`, when it says `from`, becomes `to`.
fn set_dim(g: &mut Graph, v: ValueId, axis: usize, from: i64, to: i64) {
    if let Some(ty) = g.value_mut(v).info.ty.as_mut()
        && let TypeKind::Tensor {
            shape: Some(dims), ..
        } = &mut ty.kind
        && let Some(d) = dims.get_mut(axis)
        && d.dim == Dim::Known(from)
    {
        d.dim = Dim::Known(to);
    }
}
