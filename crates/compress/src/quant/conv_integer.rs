//! int8-dynamic for Conv (`--ops Conv`): the convolution computed by `ConvInteger`.

use super::math::symmetric;
use super::weights::eligible;
use bytes::Bytes;
use whittle_ir::{Attribute, DataType, Graph, IrError, Node, NodeId, Tensor, ValueId};
use whittle_passes::guard::is_op;
use whittle_passes::pass::PassCx;

/// What a Conv int8-dynamic can take reads: activation, weight, bias, output.
pub(super) struct ConvSite {
    pub(super) x: ValueId,
    w: ValueId,
    bias: Option<ValueId>,
    y: ValueId,
}

/// `n` as a Conv whose weight passes int8-weights' guards, whose bias (if any) is a
/// constant f32 vector, and whose input is known f32.
pub(super) fn conv_site(g: &Graph, n: NodeId, cx: &PassCx, min_elements: u64) -> Option<ConvSite> {
    let node = g.node(n);
    if !is_op(node, "Conv") {
        return None;
    }
    let (x, w, y) = (node.input(0)?, node.input(1)?, node.output(0)?);
    let wdims = g.value(w).initializer()?.dims.clone();
    if wdims.len() < 3 || !eligible(g, w, min_elements) {
        return None;
    }
    if cx.facts.as_ref()?.fact(x)?.elem != Some(DataType::Float) {
        return None;
    }
    let bias = node.input(2);
    if let Some(b) = bias
        && !g
            .constant(b)
            .is_some_and(|t| t.dtype() == DataType::Float && t.dims == wdims[..1])
    {
        return None;
    }
    Some(ConvSite { x, w, bias, y })
}

/// Rewrites the Conv at `n` as
///
/// ```text
/// acc = ConvInteger(xq, Wq, xz, 128)      (Wq uint8 = round(W/s_w) + 128, per channel s_w)
/// y   = Mul(Cast<f32>(acc), Mul(xs, s_w[1,C,1,..]))  [+ Add(b[1,C,1,..])]
/// ```
///
/// The weight is uint8 around a scalar zero point of 128 (what ConvInteger allows in
/// ONNX Runtime's CPU kernels); `qmax` bounds |round(W/s_w)|. Returns the note.
pub(super) fn rewrite(
    g: &mut Graph,
    n: NodeId,
    c: &ConvSite,
    [xq, xs, xz]: [ValueId; 3],
    qmax: f32,
) -> Result<String, IrError> {
    let rank = g.value(c.w).initializer().map_or(0, |t| t.dims.len());
    let (wq, wz, ws, note) = weights(g, c, qmax)?;
    let base = g.value(c.w).name().to_string();
    let node = g.node(n).clone();
    let label = if node.name().is_empty() {
        base.clone()
    } else {
        node.name().to_string()
    };
    let mut conv = Node::new("ConvInteger").with_name(format!("{label}_ConvInteger"));
    for a in &node.attributes {
        conv = conv.with_attr(a.clone());
    }
    g.remove_node(n);
    let acc = g.fresh_value(&format!("{base}_acc"));
    let accf = g.fresh_value(&format!("{base}_acc_f32"));
    let scale = g.fresh_value(&format!("{base}_out_scale"));
    let scaled = match c.bias {
        Some(_) => g.fresh_value(&format!("{base}_scaled")),
        None => c.y,
    };
    let op = |name: &str, suffix: &str| Node::new(name).with_name(format!("{label}_{suffix}"));
    g.add_node(
        conv,
        vec![Some(xq), Some(wq), Some(xz), Some(wz)],
        vec![Some(acc)],
    )?;
    g.add_node(
        op("Cast", "Cast").with_attr(Attribute::int("to", i64::from(DataType::Float.code()))),
        vec![Some(acc)],
        vec![Some(accf)],
    )?;
    g.add_node(
        op("Mul", "Scale"),
        vec![Some(xs), Some(ws)],
        vec![Some(scale)],
    )?;
    g.add_node(
        op("Mul", "Dequantize"),
        vec![Some(accf), Some(scale)],
        vec![Some(scaled)],
    )?;
    if let Some(b) = c.bias {
        add_bias(g, b, [scaled, c.y], rank, op("Add", "Bias"))?;
    }
    g.remove_initializer(c.w);
    Ok(note)
}

/// The conv weight as uint8 codes around 128, the zero point, and the per-channel
/// scales shaped [1, C, 1, ..]; with the note for the report.
fn weights(
    g: &mut Graph,
    c: &ConvSite,
    qmax: f32,
) -> Result<(ValueId, ValueId, ValueId, String), IrError> {
    let w = g
        .value(c.w)
        .initializer()
        .cloned()
        .ok_or_else(|| IrError::Invariant("conv weight vanished".into()))?;
    let dims: Vec<usize> = w.dims.iter().map(|d| *d as usize).collect();
    let q = symmetric(&w.to_f32_vec()?, &dims, Some(0), qmax);
    let base = g.value(c.w).name().to_string();
    let codes: Vec<u8> = q
        .values
        .iter()
        .map(|v| (i16::from(*v) + 128) as u8)
        .collect();
    let wq = g.add_initializer(
        &format!("{base}_uint8"),
        Tensor::from_raw(DataType::Uint8, w.dims.clone(), Bytes::from(codes)),
    );
    let wz = g.add_initializer(
        &format!("{base}_zero_point"),
        Tensor::from_raw(DataType::Uint8, vec![], Bytes::from(vec![128u8])),
    );
    let ws = g.add_initializer(
        &format!("{base}_scale"),
        Tensor::from_f32(channel_shape(dims.len(), dims[0]), &q.scales),
    );
    let note = format!(
        "int8-dynamic {base} {:?} as ConvInteger: relative weight error {:.2e}",
        w.dims, q.relative_error
    );
    Ok((wq, wz, ws, note))
}

/// [1, channels, 1, ..] of `rank` dims: per-channel factors that broadcast over
/// [N, C, spatial..].
fn channel_shape(rank: usize, channels: usize) -> Vec<i64> {
    let mut shape = vec![1i64; rank];
    shape[1] = channels as i64;
    shape
}

/// `y = scaled + b` with the bias vector `b` reshaped to broadcast over the channels of
/// a rank-`rank` output.
fn add_bias(
    g: &mut Graph,
    b: ValueId,
    [scaled, y]: [ValueId; 2],
    rank: usize,
    add: Node,
) -> Result<(), IrError> {
    let values = g
        .constant(b)
        .map(|t| t.to_f32_vec())
        .transpose()?
        .unwrap_or_default();
    let bv = g.add_initializer(
        &format!("{}_broadcast", g.value(b).name()),
        Tensor::from_f32(channel_shape(rank, values.len()), &values),
    );
    g.add_node(add, vec![Some(scaled), Some(bv)], vec![Some(y)])?;
    whittle_passes::edit::drop_if_unused(g, b);
    Ok(())
}
