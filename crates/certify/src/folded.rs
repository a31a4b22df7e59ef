//! Lemmas whose constants are recomputed: a rewrite that folds arithmetic into a weight
//! holds for every input when the identity holds over the reals and the folded constants
//! are the exact values rounded to fp32. The checker recomputes them in f64 from the
//! tensors before (the original's, found by digest) and bounds the written ones.
//!
//! Conv then BatchNormalization (inference): BN(c) = (c − μ)·s + β with s = γ/√(σ² + ε)
//! per output channel, and Conv is linear in its weights per output channel, so
//! BN(Conv(x, W, b)) = Conv(x, W·s, (b − μ)·s + β) for every x.

use crate::record::{NodeRec, Region, TensorRec};
use crate::replay::GraphState;
use std::collections::HashMap;
use whittle_ir::Tensor;

/// Tensors by digest (`TensorRec::sha256`): what the checker can read values from.
pub type Store = HashMap<String, Tensor>;

/// The folded constants may differ from their f64 values by this many fp32 ulps.
const ULPS: f64 = 2.0;

/// What the conv-batchnorm lemma found: proved within the bound, or no conclusion (a
/// constant the two files do not hold: the region is left to evaluation).
pub enum Outcome {
    Proved(String),
    Inconclusive,
}

fn values(store: &Store, rec: Option<&TensorRec>) -> Option<Vec<f64>> {
    let t = store.get(&rec?.sha256)?;
    Some(t.to_f32_vec().ok()?.into_iter().map(f64::from).collect())
}

/// `epsilon=f:BITS` as a number (default 1e-5).
fn epsilon(bn: &NodeRec) -> f64 {
    bn.attr("epsilon")
        .and_then(|v| v.strip_prefix("f:"))
        .and_then(|b| u32::from_str_radix(b, 16).ok())
        .map_or(1e-5, |b| f64::from(f32::from_bits(b)))
}

/// Largest |got − want| in ulps of want (0 where both are equal).
fn worst_ulps(got: &[f64], want: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            let ulp = (w.abs() * f64::from(f32::EPSILON)).max(f64::from(f32::MIN_POSITIVE));
            (g - (*w as f32) as f64).abs() / ulp
        })
        .fold(0.0, f64::max)
}

/// The structural side: one Conv and one BatchNormalization removed, one Conv added
/// reading the same input with new weights, the readers of the BN's output now reading
/// the Conv's (unless the Conv took that name). Returns (conv, bn, folded conv).
fn shape(region: &Region) -> Result<(&NodeRec, &NodeRec, &NodeRec), String> {
    let conv = region.removed.iter().find(|r| r.op == "|Conv");
    let bn = region
        .removed
        .iter()
        .find(|r| r.op == "|BatchNormalization");
    let (Some(conv), Some(bn)) = (conv, bn) else {
        return Err("not a Conv and a BatchNormalization".into());
    };
    let c = conv.outputs.first().ok_or("the Conv has no output")?;
    let y = bn
        .outputs
        .first()
        .ok_or("the BatchNormalization has no output")?;
    if bn.inputs.first() != Some(c) || bn.inputs.len() != 5 {
        return Err("the BatchNormalization does not read the Conv".into());
    }
    let folded = region
        .added
        .iter()
        .find(|a| a.op == "|Conv" && (a.outputs.first() == Some(c) || a.outputs.first() == Some(y)))
        .ok_or("no folded Conv")?;
    if folded.inputs.first() != conv.inputs.first()
        || folded.attrs != conv.attrs
        || folded.inputs.len() != 3
    {
        return Err("the folded Conv does not read the same input with the same attributes".into());
    }
    let out = folded.outputs.first().ok_or("no output")?;
    let (mut want, mut got): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for r in region
        .removed
        .iter()
        .filter(|r| r.key() != conv.key() && r.key() != bn.key())
    {
        let mut e = r.clone();
        e.inputs
            .iter_mut()
            .filter(|i| *i == y)
            .for_each(|i| *i = out.clone());
        want.push(format!("{e:?}"));
    }
    for a in region.added.iter().filter(|a| a.key() != folded.key()) {
        got.push(format!("{a:?}"));
    }
    want.sort();
    got.sort();
    if want != got {
        return Err(format!("the readers of '{y}' are not rewired to '{out}'"));
    }
    Ok((conv, bn, folded))
}

/// The conv-batchnorm lemma on `region`, with `before` the graph before it and `store`
/// the tensors both files hold.
pub fn conv_batchnorm(
    region: &Region,
    before: &GraphState,
    store: &Store,
) -> Result<Outcome, String> {
    // ConvTranspose's weights are [C, M/g, k…]: its channel map is not recomputed here.
    if region.removed.iter().any(|r| r.op == "|ConvTranspose") {
        return Ok(Outcome::Inconclusive);
    }
    let (conv, bn, folded) = shape(region)?;
    let init = |name: &String| before.inits.get(name);
    let added = |name: &String| region.inits_added.iter().find(|t| &t.name == name);
    let w = values(store, conv.inputs.get(1).and_then(init));
    let b = match conv.inputs.get(2).filter(|n| !n.is_empty()) {
        Some(n) => values(store, init(n)),
        None => Some(Vec::new()),
    };
    let p: Option<Vec<Vec<f64>>> = bn.inputs[1..]
        .iter()
        .map(|n| values(store, init(n)))
        .collect();
    let w2 = values(
        store,
        folded
            .inputs
            .get(1)
            .and_then(|n| added(n).or_else(|| init(n))),
    );
    let b2 = values(
        store,
        folded
            .inputs
            .get(2)
            .and_then(|n| added(n).or_else(|| init(n))),
    );
    let (Some(w), Some(b), Some(p), Some(w2), Some(b2)) = (w, b, p, w2, b2) else {
        return Ok(Outcome::Inconclusive);
    };
    let (gamma, beta, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
    let m = gamma.len();
    if m == 0 || [beta, mean, var].iter().any(|v| v.len() != m) || w.len() % m != 0 {
        return Err("the BatchNormalization's parameters do not match the Conv's channels".into());
    }
    if w2.len() != w.len() || b2.len() != m || !(b.is_empty() || b.len() == m) {
        return Err("the folded constants have the wrong sizes".into());
    }
    let eps = epsilon(bn);
    let s: Vec<f64> = (0..m).map(|i| gamma[i] / (var[i] + eps).sqrt()).collect();
    let per = w.len() / m;
    let w_ref: Vec<f64> = w.iter().enumerate().map(|(i, x)| x * s[i / per]).collect();
    let b_ref: Vec<f64> = (0..m)
        .map(|i| (b.get(i).copied().unwrap_or(0.0) - mean[i]) * s[i] + beta[i])
        .collect();
    let (uw, ub) = (worst_ulps(&w2, &w_ref), worst_ulps(&b2, &b_ref));
    if uw > ULPS || ub > ULPS {
        return Err(format!(
            "the folded constants are {:.1} ulp (weights) and {:.1} ulp (bias) from W·s and \
             (b − μ)·s + β, more than {ULPS}",
            uw, ub
        ));
    }
    Ok(Outcome::Proved(format!(
        "BN(Conv(x, W, b)) = Conv(x, W·s, (b − μ)·s + β), s = γ/√(σ² + ε), exact over the \
         reals; the written constants are within {:.1} ulp of their f64 values",
        uw.max(ub)
    )))
}
