//! Lemmas whose constants are recomputed: a rewrite that folds arithmetic into a weight
//! holds for every input when the identity holds over the reals and the folded constants
//! are the exact values rounded to fp32. The checker recomputes them in f64 from the
//! tensors before (the original's, found by digest) and bounds the written ones.
//!
//! A per-channel affine map after a Conv (BatchNormalization in inference, or an Add or
//! Mul of one value per output channel) is y = a·c + d per channel, and Conv is linear in
//! its weights per output channel, so a·Conv(x, W, b) + d = Conv(x, W·a, b·a + d) for
//! every x.

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

/// The values a written constant holds: from `store` by digest, or, when neither file
/// holds it, `want` rounded to fp32 if that has the recorded digest (then stored).
fn written(store: &mut Store, rec: &TensorRec, want: &[f64]) -> Option<Vec<f64>> {
    if let Some(v) = values(store, Some(rec)) {
        return Some(v);
    }
    let rounded: Vec<f32> = want.iter().map(|x| *x as f32).collect();
    let t = Tensor::from_f32(rec.dims.clone(), &rounded);
    if rec.dtype != 1 || crate::record::tensor_digest(&t) != rec.sha256 {
        return None;
    }
    store.insert(rec.sha256.clone(), t);
    Some(rounded.into_iter().map(f64::from).collect())
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

/// The ops whose per-channel affine map folds into a Conv, by rule.
fn post_ops(rule: &str) -> &'static [&'static str] {
    match rule {
        "conv-batchnorm" => &["|BatchNormalization"],
        "conv-add-mul" => &["|Add", "|Mul"],
        _ => &[],
    }
}

/// The structural side: a Conv and the node after it (`post_ops`) removed, one Conv
/// added reading the same input with new constants, the readers of the second node's
/// output now reading the Conv's (unless the Conv took that name). Returns (conv, the
/// node after it, the folded conv).
fn shape<'a>(
    rule: &str,
    region: &'a Region,
) -> Result<(&'a NodeRec, &'a NodeRec, &'a NodeRec), String> {
    let conv = region
        .removed
        .iter()
        .find(|r| r.op == "|Conv")
        .ok_or("no Conv removed")?;
    let c = conv.outputs.first().ok_or("the Conv has no output")?;
    let post = region
        .removed
        .iter()
        .find(|r| post_ops(rule).contains(&r.op.as_str()) && r.inputs.contains(c))
        .ok_or("nothing after the Conv that folds into it")?;
    let y = post.outputs.first().ok_or("the folded op has no output")?;
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
        .filter(|r| r.key() != conv.key() && r.key() != post.key())
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
    Ok((conv, post, folded))
}

/// A per-channel constant read against a Conv output of rank `rank` with `m` channels:
/// its dims are 1 but for the channel axis (1), right-aligned; one value is broadcast.
fn per_channel(
    rec: &TensorRec,
    values: Vec<f64>,
    rank: usize,
    m: usize,
) -> Result<Vec<f64>, String> {
    let off = rank
        .checked_sub(rec.dims.len())
        .ok_or("the constant has a higher rank")?;
    let ok = rec
        .dims
        .iter()
        .enumerate()
        .all(|(i, d)| *d == 1 || (off + i == 1 && *d == m as i64));
    match values.len() {
        _ if !ok => Err(format!(
            "'{}' is not one value per output channel",
            rec.name
        )),
        1 => Ok(vec![values[0]; m]),
        n if n == m => Ok(values),
        _ => Err(format!(
            "'{}' is not one value per output channel",
            rec.name
        )),
    }
}

/// The affine map y = a·c + d (per output channel) the node after the Conv applies,
/// with the lemma it rests on; None when a constant is in neither file.
type Affine = (Vec<f64>, Vec<f64>, &'static str);

/// A constant's record and values, by name.
type Lookup<'a> = dyn Fn(&String) -> Option<(TensorRec, Vec<f64>)> + 'a;

fn affine(
    post: &NodeRec,
    conv_out: &str,
    (m, rank): (usize, usize),
    lookup: &Lookup,
) -> Result<Option<Affine>, String> {
    if post.op == "|BatchNormalization" {
        if post.inputs.len() != 5 || post.inputs[0] != conv_out {
            return Err("the BatchNormalization does not read the Conv".into());
        }
        let Some(p) = post.inputs[1..]
            .iter()
            .map(lookup)
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        let (gamma, beta, mean, var) = (&p[0].1, &p[1].1, &p[2].1, &p[3].1);
        if [gamma, beta, mean, var].iter().any(|v| v.len() != m) {
            return Err(
                "the BatchNormalization's parameters do not match the Conv's channels".into(),
            );
        }
        let eps = epsilon(post);
        let a: Vec<f64> = (0..m).map(|i| gamma[i] / (var[i] + eps).sqrt()).collect();
        let d: Vec<f64> = (0..m).map(|i| beta[i] - mean[i] * a[i]).collect();
        return Ok(Some((
            a,
            d,
            "BN(Conv(x, W, b)) = Conv(x, W·s, (b − μ)·s + β), s = γ/√(σ² + ε)",
        )));
    }
    let other = post
        .inputs
        .iter()
        .find(|i| *i != conv_out)
        .ok_or("the op reads the Conv twice")?;
    let Some((rec, v)) = lookup(other) else {
        return Ok(None);
    };
    let c = per_channel(&rec, v, rank, m)?;
    Ok(Some(match post.op.as_str() {
        "|Add" => (
            vec![1.0; m],
            c,
            "Conv(x, W, b) + c = Conv(x, W, b + c), c per output channel",
        ),
        _ => (
            c,
            vec![0.0; m],
            "Conv(x, W, b)·s = Conv(x, W·s, b·s), s per output channel",
        ),
    }))
}

/// The Conv's weights (record and values) and bias (zeros without one), checked to split
/// into output channels; None when a value is in neither file.
type ConvConstants = (TensorRec, Vec<f64>, Vec<f64>);

fn conv_constants(
    conv: &NodeRec,
    before: &GraphState,
    store: &Store,
) -> Result<Option<ConvConstants>, String> {
    let Some((w_rec, w)) = conv
        .inputs
        .get(1)
        .and_then(|n| before.inits.get(n))
        .and_then(|r| Some((r.clone(), values(store, Some(r))?)))
    else {
        return Ok(None);
    };
    let m = usize::try_from(*w_rec.dims.first().ok_or("the weights have no dims")?)
        .map_err(|_| "negative dims")?;
    if m == 0 || w.len() % m != 0 {
        return Err("the weights do not split into output channels".into());
    }
    let b = match conv.inputs.get(2).filter(|n| !n.is_empty()) {
        Some(n) => match before.inits.get(n).and_then(|r| values(store, Some(r))) {
            Some(b) if b.len() == m => b,
            Some(_) => return Err("the Conv's bias has the wrong size".into()),
            None => return Ok(None),
        },
        None => vec![0.0; m],
    };
    Ok(Some((w_rec, w, b)))
}

/// The lemma of a fold of a per-channel affine op into a Conv (`conv-batchnorm`,
/// `conv-add-mul`) on `region`, with `before` the graph before it and `store` the
/// tensors known by digest. Conv is linear in W per output channel, so
/// a·Conv(x, W, b) + d = Conv(x, W·a, b·a + d) over the reals; the written constants
/// must be those values within the fp32 bound. A written constant in neither file (a
/// later fold consumed it) is proved when its f64 value rounded to fp32 has the recorded
/// digest, and then joins `store` for the folds after it.
pub fn conv_affine(
    rule: &str,
    region: &Region,
    before: &GraphState,
    store: &mut Store,
) -> Result<Outcome, String> {
    // ConvTranspose's weights are [C, M/g, k…]: its channel map is not recomputed here.
    if region.removed.iter().any(|r| r.op == "|ConvTranspose") {
        return Ok(Outcome::Inconclusive);
    }
    let (conv, post, folded) = shape(rule, region)?;
    let rec_of = |name: &String| -> Option<TensorRec> {
        region
            .inits_added
            .iter()
            .find(|t| &t.name == name)
            .or_else(|| before.inits.get(name))
            .cloned()
    };
    let snapshot: &Store = store;
    let found = |name: &String| -> Option<(TensorRec, Vec<f64>)> {
        let rec = rec_of(name)?;
        let v = values(snapshot, Some(&rec))?;
        Some((rec, v))
    };
    let Some((w_rec, w, b)) = conv_constants(conv, before, snapshot)? else {
        return Ok(Outcome::Inconclusive);
    };
    let m = b.len();
    let conv_out = conv.outputs.first().cloned().unwrap_or_default();
    let Some((a, d, identity)) = affine(post, &conv_out, (m, w_rec.dims.len()), &found)? else {
        return Ok(Outcome::Inconclusive);
    };
    let (w_name, b_name) = match (folded.inputs.get(1), folded.inputs.get(2)) {
        (Some(x), Some(y)) => (x.clone(), y.clone()),
        _ => return Err("the folded Conv has no weights or bias".into()),
    };
    let (Some(w2_rec), Some(b2_rec)) = (rec_of(&w_name), rec_of(&b_name)) else {
        return Ok(Outcome::Inconclusive);
    };
    let per = w.len() / m;
    let w_ref: Vec<f64> = w.iter().enumerate().map(|(i, x)| x * a[i / per]).collect();
    let b_ref: Vec<f64> = (0..m).map(|i| b[i] * a[i] + d[i]).collect();
    let (Some(w2), Some(b2)) = (
        written(store, &w2_rec, &w_ref),
        written(store, &b2_rec, &b_ref),
    ) else {
        return Ok(Outcome::Inconclusive);
    };
    if w2.len() != w.len() || b2.len() != m {
        return Err("the folded constants have the wrong sizes".into());
    }
    let (uw, ub) = (worst_ulps(&w2, &w_ref), worst_ulps(&b2, &b_ref));
    if uw > ULPS || ub > ULPS {
        return Err(format!(
            "the folded constants are {uw:.1} ulp (weights) and {ub:.1} ulp (bias) from their \
             f64 values, more than {ULPS}"
        ));
    }
    Ok(Outcome::Proved(format!(
        "{identity}: exact over the reals, Conv being linear in W per output channel; the \
         written constants are within {:.1} ulp of their f64 values",
        uw.max(ub)
    )))
}

/// The lemma of `conv-input-scale` on `region`: Conv(x·s, W, b) = Conv(x, W·s, b) for a
/// one-element s, exact over the reals (a Conv is linear in its input, and zero padding
/// stays zero); the written weights must be W·s, recomputed in f64, within the fp32
/// bound.
pub fn conv_input_scale(
    region: &Region,
    before: &GraphState,
    store: &mut Store,
) -> Result<Outcome, String> {
    // A region of another shape is left to evaluation: only the weights are judged here.
    let (Some([mul, conv]), Some([folded])) = (
        ordered(&region.removed, ["|Mul", "|Conv"]),
        ordered(&region.added, ["|Conv"]),
    ) else {
        return Ok(Outcome::Inconclusive);
    };
    let Some(m) = mul.outputs.first() else {
        return Ok(Outcome::Inconclusive);
    };
    let x = mul.inputs.iter().find(|i| !before.inits.contains_key(*i));
    let s_name = mul.inputs.iter().find(|i| before.inits.contains_key(*i));
    let (Some(x), Some(s_name)) = (x, s_name) else {
        return Ok(Outcome::Inconclusive);
    };
    let same_rest =
        folded.inputs.get(2) == conv.inputs.get(2) && folded.inputs.len() == conv.inputs.len();
    if conv.inputs.first() != Some(m)
        || folded.inputs.first() != Some(x)
        || folded.outputs != conv.outputs
        || folded.attrs != conv.attrs
        || !same_rest
    {
        return Ok(Outcome::Inconclusive);
    }
    let s = match values(store, before.inits.get(s_name)) {
        Some(s) if s.len() == 1 => s[0],
        Some(_) => return Err(format!("'{s_name}' is not one value")),
        None => return Ok(Outcome::Inconclusive),
    };
    let w_rec = conv.inputs.get(1).and_then(|n| before.inits.get(n));
    let Some(w) = values(store, w_rec) else {
        return Ok(Outcome::Inconclusive);
    };
    let w2_name = folded
        .inputs
        .get(1)
        .ok_or("the folded Conv has no weights")?;
    let w2_rec = region
        .inits_added
        .iter()
        .find(|t| &t.name == w2_name)
        .or_else(|| before.inits.get(w2_name))
        .cloned();
    let w_ref: Vec<f64> = w.iter().map(|v| v * s).collect();
    let Some(w2) = w2_rec.and_then(|r| written(store, &r, &w_ref)) else {
        return Ok(Outcome::Inconclusive);
    };
    let u = worst_ulps(&w2, &w_ref);
    if w2.len() != w.len() || u > ULPS {
        return Err(format!(
            "the folded weights are {u:.1} ulp from W·s, more than {ULPS}"
        ));
    }
    Ok(Outcome::Proved(format!(
        "Conv(x·s, W, b) = Conv(x, W·s, b) for one value s: exact over the reals, Conv being \
         linear in x with zero padding; the written weights are within {u:.1} ulp of W·s"
    )))
}

/// The records of `recs`, one per op of `ops` in that order, when `recs` holds exactly
/// those ops.
fn ordered<'a, const N: usize>(recs: &'a [NodeRec], ops: [&str; N]) -> Option<[&'a NodeRec; N]> {
    if recs.len() != N {
        return None;
    }
    let mut out: Vec<&NodeRec> = Vec::with_capacity(N);
    for op in ops {
        out.push(
            recs.iter()
                .find(|r| r.op == op && !out.iter().any(|o| o.key() == r.key()))?,
        );
    }
    out.try_into().ok()
}
