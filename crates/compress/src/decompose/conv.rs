//! `--decompose conv`: a Conv becomes a depthwise Conv followed by a 1×1 pointwise Conv
//! (Network Decoupling, arXiv 1808.05517).
//!
//! W[Cout, Cin/g, kh, kw] with Mg = Cout/g outputs per group. For input channel c (in
//! group γ, index c' inside it) the block A_c[o', k] = W[γ·Mg + o', c', k] (Mg × K, K =
//! kh·kw) is factored and m terms kept, A_c ≈ Σ_r p_cr·d_crᵀ:
//! - depthwise `Conv(X, D, group=Cin)` with D[c·m + r, 0, :] = d_cr (kh × kw; strides,
//!   pads, dilations and auto_pad of the original);
//! - pointwise `Conv(Z, P, B', group=g)`, 1×1, with P[γ·Mg + o', c'·m + r] = p_cr[o'].
//!
//! Exact at m = min(Mg, K). With data, each block is weighted by its channel's patch
//! covariance and the bias absorbs the mean shift the truncation causes.

use super::factor::Weighting;
use super::layer::{ConvShape, Layer};
use super::refit::Refit;
use super::stats::LayerStats;
use super::{Kind, Prepared};
use bytes::Bytes;
use nalgebra::{DMatrix, DVector};
use whittle_ir::{Attribute, DataType, Graph, IrError, Node, Tensor};

/// Factors every per-input-channel block of `w` (the conv's weight, row-major).
pub fn prepare(c: &ConvShape, w: &[f32], stats: Option<&LayerStats>, centered: bool) -> Prepared {
    let (mg, taps, per_group) = (c.mg(), c.taps(), c.cin / c.group);
    let mut prepared = Prepared::new(Kind::Conv);
    for ch in 0..c.cin {
        let (gamma, cc) = (ch / per_group, ch % per_group);
        let a = DMatrix::from_fn(mg, taps, |o, k| {
            f64::from(w[((gamma * mg + o) * per_group + cc) * taps + k])
        });
        let moments = stats.and_then(|s| s.moments.get(ch));
        let weight = moments.and_then(|m| Weighting::of(&m.second(centered)));
        prepared.push(&a, weight.as_ref(), moments.map(|m| m.mean()));
    }
    if let Some(full) = stats.and_then(|s| s.full.as_ref()) {
        prepared.refit = Some(Refit::new(c, w, full.second(true), full.mean()));
    }
    prepared
}

/// The depthwise filters at `m` terms as one block-diagonal matrix (Cin·m × Cin·K):
/// row c·m + r holds channel c's r-th filter in columns c·K...
fn depthwise(c: &ConvShape, p: &Prepared, m: usize) -> DMatrix<f64> {
    let taps = c.taps();
    let mut d = DMatrix::zeros(c.cin * m, c.cin * taps);
    for (ch, b) in p.blocks.iter().enumerate() {
        for r in 0..m.min(b.full_rank()) {
            for k in 0..taps {
                d[(ch * m + r, ch * taps + k)] = b.right[(r, k)];
            }
        }
    }
    d
}

/// Relative output error at `m` terms: of the jointly solved pointwise conv when the
/// whole-patch statistics exist, else of the per-channel fit.
pub fn error(c: &ConvShape, p: &Prepared, m: usize) -> f64 {
    let m = m.clamp(1, c.mg().min(c.taps()));
    match p
        .refit
        .as_ref()
        .and_then(|r| r.solve(c, &depthwise(c, p, m), m))
    {
        Some(s) => s.error,
        None => p.error(m),
    }
}

/// Rewrites the layer's Conv into depthwise + pointwise at `m` terms per channel.
pub fn emit(
    g: &mut Graph,
    l: &Layer,
    c: &ConvShape,
    p: &Prepared,
    m: usize,
) -> Result<(), IrError> {
    let m = m.clamp(1, c.mg().min(c.taps()));
    let (mg, taps, per_group) = (c.mg(), c.taps(), c.cin / c.group);
    let mut d = vec![0f32; c.cin * m * taps];
    let mut pw = vec![0f32; c.cout * per_group * m];
    let solved = p
        .refit
        .as_ref()
        .and_then(|r| r.solve(c, &depthwise(c, p, m), m));
    for (ch, b) in p.blocks.iter().enumerate() {
        let (gamma, cc) = (ch / per_group, ch % per_group);
        for r in 0..m.min(b.full_rank()) {
            for k in 0..taps {
                d[(ch * m + r) * taps + k] = b.right[(r, k)] as f32;
            }
            for o in 0..mg {
                let at = (gamma * mg + o) * per_group * m + cc * m + r;
                pw[at] = match &solved {
                    Some(s) => s.p[(gamma * mg + o, cc * m + r)],
                    None => b.left[(o, r)],
                } as f32;
            }
        }
    }
    let node = g.node(l.node).clone();
    let base = super::base_name(g, l.node);
    let dims =
        |a: usize, b: usize, h: usize, w: usize| vec![a as i64, b as i64, h as i64, w as i64];
    let dv = g.add_initializer(
        &format!("{base}_depthwise_w"),
        f32_tensor(dims(c.cin * m, 1, c.kernel[0], c.kernel[1]), &d),
    );
    let pv = g.add_initializer(
        &format!("{base}_pointwise_w"),
        f32_tensor(dims(c.cout, per_group * m, 1, 1), &pw),
    );
    let z = g.fresh_value(&format!("{base}_depthwise"));
    let mut dw = Node::new("Conv").with_name(format!("{base}_depthwise"));
    for a in &node.attributes {
        if a.name() != "group" {
            dw = dw.with_attr(a.clone());
        }
    }
    dw.set_attr(Attribute::int("group", c.cin as i64));
    g.add_node_at(l.node, dw, vec![node.input(0), Some(dv)], vec![Some(z)])?;

    let bias = match &solved {
        Some(s) => shifted_bias(g, node.input(2), c.cout, &s.shift),
        None => corrected_bias(g, node.input(2), p, m, c.cout, |ch| {
            (ch / per_group * mg..(ch / per_group + 1) * mg).collect()
        }),
    };
    let pn = g.node_mut(l.node);
    for a in ["auto_pad", "pads", "strides", "dilations"] {
        pn.remove_attr(a);
    }
    pn.set_attr(Attribute::ints("kernel_shape", vec![1, 1]));
    pn.set_attr(Attribute::int("group", c.group as i64));
    g.set_input(l.node, 0, Some(z));
    g.set_input(l.node, 1, Some(pv));
    if let Some(b) = bias {
        let bv = g.add_initializer(&format!("{base}_bias"), f32_tensor(vec![c.cout as i64], &b));
        let old = node.input(2);
        g.set_input(l.node, 2, Some(bv));
        drop_if_unused(g, old);
    }
    g.remove_initializer(l.w);
    Ok(())
}

/// Removes initializer `v` once nothing reads it.
pub fn drop_if_unused(g: &mut Graph, v: Option<whittle_ir::ValueId>) {
    if let Some(v) = v
        && g.value(v).uses().is_empty()
        && !g.is_output(v)
        && !g.inputs().contains(&v)
    {
        g.remove_initializer(v);
    }
}

/// The bias after absorbing the mean shift of the truncation: b + Σ_c (A_c − B_c)·μ_c,
/// each block adding into the outputs `rows(c)` names. None when there is nothing to
/// correct (no data) and the bias can stay as it is.
pub fn corrected_bias(
    g: &Graph,
    bias: Option<whittle_ir::ValueId>,
    p: &Prepared,
    m: usize,
    outputs: usize,
    rows: impl Fn(usize) -> Vec<usize>,
) -> Option<Vec<f32>> {
    if p.means.is_empty() {
        return None;
    }
    let mut b: Vec<f64> = match bias.and_then(|v| g.constant(v)).map(|t| t.to_f32_vec()) {
        Some(Ok(v)) if v.len() == outputs => v.iter().map(|x| f64::from(*x)).collect(),
        Some(_) => return None,
        None => vec![0.0; outputs],
    };
    for (ch, (blk, mu)) in p.blocks.iter().zip(&p.means).enumerate() {
        let shift: DVector<f64> = (&p.originals[ch] - blk.approx(m)) * mu;
        for (i, o) in rows(ch).into_iter().enumerate() {
            b[o] += shift[i];
        }
    }
    Some(b.iter().map(|x| *x as f32).collect())
}

/// The bias (or zeros) plus `shift`; None when the bias is not a vector of `outputs`.
fn shifted_bias(
    g: &Graph,
    bias: Option<whittle_ir::ValueId>,
    outputs: usize,
    shift: &DVector<f64>,
) -> Option<Vec<f32>> {
    let b = match bias.and_then(|v| g.constant(v)).map(|t| t.to_f32_vec()) {
        Some(Ok(v)) if v.len() == outputs => v,
        Some(_) => return None,
        None => vec![0.0; outputs],
    };
    Some(
        b.iter()
            .zip(shift.iter())
            .map(|(b, s)| (f64::from(*b) + s) as f32)
            .collect(),
    )
}

/// An f32 tensor from values.
pub fn f32_tensor(dims: Vec<i64>, values: &[f32]) -> Tensor {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Tensor::from_raw(DataType::Float, dims, Bytes::from(raw))
}

/// The rank-m weight the rewrite computes, in the original's layout (tests, error
/// figures).
pub fn reconstruct(c: &ConvShape, p: &Prepared, m: usize) -> Vec<f32> {
    let (mg, taps, per_group) = (c.mg(), c.taps(), c.cin / c.group);
    p.scatter(m, c.cout * per_group * taps, |ch, o, k| {
        let (gamma, cc) = (ch / per_group, ch % per_group);
        ((gamma * mg + o) * per_group + cc) * taps + k
    })
}
