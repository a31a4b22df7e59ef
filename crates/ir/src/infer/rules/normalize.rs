//! Normalisations: BatchNormalization, InstanceNormalization, LayerNormalization,
//! GroupNormalization, and the recurrent layers LSTM, GRU and RNN.

use crate::dtype::DataType;
use crate::infer::ctx::{Ctx, RuleResult};
use crate::infer::fact::Fact;
use crate::types::Dim;

/// The rule for `op`, if this family has one.
pub fn rule(op: &str, cx: &mut Ctx) -> Option<RuleResult> {
    Some(match op {
        "BatchNormalization" => batch_norm(cx),
        "InstanceNormalization" | "GroupNormalization" => Ok(vec![cx.same_as(0)]),
        "LayerNormalization" => layer_norm(cx),
        "LSTM" | "GRU" | "RNN" => recurrent(op, cx),
        _ => return None,
    })
}

fn batch_norm(cx: &mut Ctx) -> RuleResult {
    let y = cx.same_as(0);
    let c = cx
        .dims(0)
        .and_then(|d| d.get(1).cloned())
        .unwrap_or(Dim::Unknown);
    let stat = Fact::tensor(cx.elem(0), vec![c]);
    Ok(vec![y, stat.clone(), stat.clone(), stat.clone(), stat])
}

fn layer_norm(cx: &mut Ctx) -> RuleResult {
    let y = cx.same_as(0);
    let stash = cx
        .attr("stash_type")
        .and_then(|a| a.i)
        .map_or(DataType::Float, |c| DataType::from_code(c as i32));
    let Some(dims) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![
            y,
            Fact::of_elem(Some(stash)),
            Fact::of_elem(Some(stash)),
        ]);
    };
    let a = cx.axis(cx.int("axis", -1), dims.len())?;
    let mut s = dims[..a].to_vec();
    s.resize(dims.len(), Dim::Known(1));
    let stat = Fact::tensor(Some(stash), s);
    Ok(vec![y, stat.clone(), stat])
}

/// Y `[seq, dirs, batch, hidden]`, Y_h and Y_c `[dirs, batch, hidden]` (layout 0), or
/// batch-first with layout 1.
fn recurrent(op: &str, cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let dirs = if cx.string("direction", "forward") == "bidirectional" {
        2
    } else {
        1
    };
    let hidden = cx
        .attr("hidden_size")
        .and_then(|a| a.i)
        .map_or(Dim::Unknown, Dim::Known);
    let dirs = Dim::Known(dirs);
    let Some(x) = cx.dims(0).filter(|d| d.len() == 3).map(<[Dim]>::to_vec) else {
        return Ok(vec![Fact::of_elem(elem); if op == "LSTM" { 3 } else { 2 }]);
    };
    let batch_first = cx.int("layout", 0) != 0;
    let (seq, batch) = if batch_first {
        (&x[1], &x[0])
    } else {
        (&x[0], &x[1])
    };
    let y = if batch_first {
        vec![batch.clone(), seq.clone(), dirs.clone(), hidden.clone()]
    } else {
        vec![seq.clone(), dirs.clone(), batch.clone(), hidden.clone()]
    };
    let h = if batch_first {
        vec![batch.clone(), dirs, hidden]
    } else {
        vec![dirs, batch.clone(), hidden]
    };
    let mut out = vec![Fact::tensor(elem, y), Fact::tensor(elem, h.clone())];
    if op == "LSTM" {
        out.push(Fact::tensor(elem, h));
    }
    Ok(out)
}
