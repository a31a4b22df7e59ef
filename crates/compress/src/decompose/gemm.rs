//! `--decompose gemm`: a MatMul/Gemm with constant weight W (k × n, `y = x·W`) becomes two
//! products through a rank-r bottleneck, `y = (x·R)·Q` with R of k × r and Q of r × n.
//!
//! Written as the block A = Wᵀ (n × k, `y = A·x` per row) so the shared factorization
//! applies: with data, A is weighted by the rows' covariance and the bias absorbs the
//! mean shift. MatMul → MatMul, MatMul (+ Add for the correction); Gemm → MatMul, Gemm
//! (alpha, beta and C stay on the second).

use super::conv::{corrected_bias, drop_if_unused, f32_tensor};
use super::factor::Weighting;
use super::layer::{DenseShape, Layer};
use super::stats::LayerStats;
use super::{Kind, Prepared};
use nalgebra::DMatrix;
use whittle_ir::{Attribute, Graph, IrError, Node};

/// Factors the layer's weight (`w` as stored, row-major).
pub fn prepare(d: &DenseShape, w: &[f32], stats: Option<&LayerStats>, centered: bool) -> Prepared {
    // A[o, i] = W[i, o] (stored k × n), or the stored n × k itself under transB.
    let a = DMatrix::from_fn(d.n, d.k, |o, i| {
        f64::from(if d.trans_b {
            w[o * d.k + i]
        } else {
            w[i * d.n + o]
        })
    });
    let moments = stats.and_then(|s| s.moments.first());
    let weight = moments.and_then(|m| Weighting::of(&m.second(centered)));
    let mut p = Prepared::new(Kind::Gemm);
    p.push(&a, weight.as_ref(), moments.map(|m| m.mean()));
    p
}

/// Rewrites the layer at rank `r`.
pub fn emit(
    g: &mut Graph,
    l: &Layer,
    d: &DenseShape,
    p: &Prepared,
    r: usize,
) -> Result<(), IrError> {
    let Some((b, r)) = p.single(r) else {
        return Ok(());
    };
    // R = rightᵀ (k × r), Q = leftᵀ (r × n).
    let rt: Vec<f32> = (0..d.k)
        .flat_map(|i| (0..r).map(move |j| b.right[(j, i)] as f32))
        .collect();
    let qt: Vec<f32> = (0..r)
        .flat_map(|j| (0..d.n).map(move |o| b.left[(o, j)] as f32))
        .collect();
    let node = g.node(l.node).clone();
    let base = super::base_name(g, l.node);
    let rv = g.add_initializer(
        &format!("{base}_lowrank_in"),
        f32_tensor(vec![d.k as i64, r as i64], &rt),
    );
    let qv = g.add_initializer(
        &format!("{base}_lowrank_out"),
        f32_tensor(vec![r as i64, d.n as i64], &qt),
    );
    let z = g.fresh_value(&format!("{base}_lowrank"));
    // A Gemm's input is 2-D: the first product is a Gemm too (with a zero C, which every
    // opset accepts; tract 0.23 mis-optimizes a MatMul to a rank-1 bottleneck there).
    let first = if d.gemm {
        let zero = g.add_initializer(
            &format!("{base}_lowrank_c"),
            f32_tensor(vec![r as i64], &vec![0.0; r]),
        );
        (Node::new("Gemm"), vec![node.input(0), Some(rv), Some(zero)])
    } else {
        (Node::new("MatMul"), vec![node.input(0), Some(rv)])
    };
    g.add_node_at(
        l.node,
        first.0.with_name(format!("{base}_lowrank")),
        first.1,
        vec![Some(z)],
    )?;
    if d.gemm {
        g.set_input(l.node, 0, Some(z));
        g.set_input(l.node, 1, Some(qv));
        g.node_mut(l.node).set_attr(Attribute::int("transB", 0));
        gemm_bias(g, l, d, p, r)?;
    } else if let Some(b) = corrected_bias(g, None, p, r, d.n, |_| (0..d.n).collect()) {
        // MatMul has no bias: the node becomes the Add of the correction after a new
        // MatMul, so its output (and everything reading it) stays as it is.
        let mid = g.fresh_value(&format!("{base}_uncorrected"));
        g.add_node_at(
            l.node,
            Node::new("MatMul").with_name(base.clone()),
            vec![Some(z), Some(qv)],
            vec![Some(mid)],
        )?;
        let bv = g.add_initializer(
            &format!("{base}_bias_shift"),
            f32_tensor(vec![d.n as i64], &b),
        );
        let add = g.node_mut(l.node);
        add.op_type = Some("Add".into());
        add.name = Some(format!("{base}_bias_shift"));
        g.set_input(l.node, 0, Some(mid));
        g.set_input(l.node, 1, Some(bv));
    } else {
        g.set_input(l.node, 0, Some(z));
        g.set_input(l.node, 1, Some(qv));
    }
    g.remove_initializer(l.w);
    Ok(())
}

/// Gemm's C after absorbing the mean shift: C + alpha·(A − B)·μ / beta, when C is a
/// vector of n (or absent, or a scalar) and beta ≠ 0.
fn gemm_bias(
    g: &mut Graph,
    l: &Layer,
    d: &DenseShape,
    p: &Prepared,
    r: usize,
) -> Result<(), IrError> {
    let node = g.node(l.node).clone();
    let f = |name: &str| node.attr(name).and_then(|a| a.f).unwrap_or(1.0);
    let (alpha, beta) = (f64::from(f("alpha")), f64::from(f("beta")));
    let c = node.input(2);
    let current: Vec<f32> = match c.and_then(|v| g.constant(v)).map(|t| t.to_f32_vec()) {
        Some(Ok(v)) if v.len() == d.n => v,
        Some(Ok(v)) if v.len() == 1 => vec![v[0]; d.n],
        Some(_) => return Ok(()),
        None => vec![0.0; d.n],
    };
    if beta == 0.0 && c.is_some() {
        return Ok(());
    }
    let beta = if c.is_some() { beta } else { 1.0 };
    let Some(shifted) = corrected_bias(g, None, p, r, d.n, |_| (0..d.n).collect()) else {
        return Ok(());
    };
    let b: Vec<f32> = current
        .iter()
        .zip(&shifted)
        .map(|(c, s)| (f64::from(*c) + alpha * f64::from(*s) / beta) as f32)
        .collect();
    let base = super::base_name(g, l.node);
    let bv = g.add_initializer(&format!("{base}_bias"), f32_tensor(vec![d.n as i64], &b));
    g.set_input(l.node, 2, Some(bv));
    if c.is_none() {
        g.node_mut(l.node).set_attr(Attribute::float("beta", 1.0));
    }
    drop_if_unused(g, c);
    Ok(())
}

/// The rank-r weight the rewrite computes, in the stored layout (tests, error figures).
pub fn reconstruct(d: &DenseShape, p: &Prepared, r: usize) -> Vec<f32> {
    p.scatter(r, d.k * d.n, |_, o, i| {
        if d.trans_b { o * d.k + i } else { i * d.n + o }
    })
}
