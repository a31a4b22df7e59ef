//! A per-channel `Add` or `Mul` after a `Conv` folds into its bias or weights (an `Add`
//! after a `ConvTranspose` into its bias).

use crate::edit::{bypass, drop_if_unused};
use crate::guard::{constant, dims, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{DataType, Graph, NodeId, Tensor, ValueId};

/// y = Add(Conv(x, W, b), c) → Conv(x, W, b + c) and y = Mul(Conv(x, W, b), s) →
/// Conv(x, W·s, b·s), for constants c, s holding one value per output channel (or one
/// value in all), broadcast along the channel axis only; Add(ConvTranspose(x, W, b), c)
/// → ConvTranspose(x, W, b + c) likewise.
///
/// Guards: the Conv result feeds only the Add/Mul and is not an output; W and b are f32
/// constants read by this Conv alone; the constant is f32, its rank is at most the
/// output's and every dim except the channel one is 1.
pub struct ConvAffine;

/// The per-channel values of `c` against an output of rank `rank` with `m` channels.
fn per_channel(g: &Graph, c: ValueId, rank: usize, m: usize) -> Option<Vec<f64>> {
    let t = constant(g, Some(c))?;
    if t.dtype() != DataType::Float || t.dims.len() > rank {
        return None;
    }
    let off = rank - t.dims.len();
    let ok = t
        .dims
        .iter()
        .enumerate()
        .all(|(i, d)| *d == 1 || (off + i == 1 && *d == m as i64));
    if !ok {
        return None;
    }
    let v = t.to_f32_vec().ok()?;
    match v.len() {
        1 => Some(vec![f64::from(v[0]); m]),
        n if n == m => Some(v.into_iter().map(f64::from).collect()),
        _ => None,
    }
}

impl Rule for ConvAffine {
    fn name(&self) -> &'static str {
        "conv-add-mul"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let op = g.node(n);
        let is_add = is_op(op, "Add");
        if !is_add && !is_op(op, "Mul") {
            return None;
        }
        let y = op.output(0)?;
        let (p, q) = (op.input(0)?, op.input(1)?);
        let (conv_out, c) = if constant(g, Some(q)).is_some() {
            (p, q)
        } else {
            (q, p)
        };
        let (conv_id, _) = g.value(conv_out).producer()?;
        let conv = g.node(conv_id);
        // ConvTranspose takes the Add only (its weight is [Cin, Cout/group, ...]).
        let transposed = is_op(conv, "ConvTranspose") && is_add;
        if !(is_op(conv, "Conv") || transposed) || !single_use(g, conv_out) {
            return None;
        }
        let wv = conv.input(1)?;
        let w = constant(g, Some(wv))?;
        if w.dtype() != DataType::Float || g.value(wv).uses().len() != 1 || w.dims.len() < 2 {
            return None;
        }
        let m = if transposed {
            let group = conv.attr("group").and_then(|a| a.i).unwrap_or(1);
            usize::try_from(w.dims[1].checked_mul(group)?).ok()?
        } else {
            usize::try_from(w.dims[0]).ok()?
        };
        let rank = dims(g, conv_out)?.len();
        let k = per_channel(g, c, rank, m)?;
        let bias: Vec<f64> = match conv.input(2) {
            Some(b) if g.value(b).uses().len() == 1 => {
                let t = constant(g, Some(b))?;
                let v = t.to_f32_vec().ok()?;
                (v.len() == m && t.dtype() == DataType::Float)
                    .then(|| v.into_iter().map(f64::from).collect())?
            }
            Some(_) => return None,
            None => vec![0.0; m],
        };
        let (new_w, new_b): (Option<Vec<f32>>, Vec<f32>) = if is_add {
            (None, (0..m).map(|i| (bias[i] + k[i]) as f32).collect())
        } else {
            let wd = w.to_f32_vec().ok()?;
            let per = wd.len() / m.max(1);
            let scaled = wd
                .iter()
                .enumerate()
                .map(|(i, x)| (f64::from(*x) * k[i / per]) as f32)
                .collect();
            (
                Some(scaled),
                (0..m).map(|i| (bias[i] * k[i]) as f32).collect(),
            )
        };
        let (w_dims, w_name) = (w.dims.clone(), g.value(wv).name().to_string());
        Some(Box::new(move |g: &mut Graph| {
            if let Some(nw) = new_w {
                let v = g.add_initializer(&w_name, Tensor::from_f32(w_dims, &nw));
                g.set_input(conv_id, 1, Some(v));
                drop_if_unused(g, wv);
            }
            let old_b = g.node(conv_id).input(2);
            let nb = g.add_initializer(
                &format!("{w_name}_bias"),
                Tensor::from_f32(vec![m as i64], &new_b),
            );
            g.set_input(conv_id, 2, Some(nb));
            if let Some(b) = old_b {
                drop_if_unused(g, b);
            }
            bypass(g, n, y, conv_out)
        }))
    }
}
