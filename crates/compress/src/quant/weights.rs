//! `quantize-int8-weights`: float weights stored as int8 behind `DequantizeLinear`.

use super::math::{Int8, symmetric_int8};
use crate::weighted::{WeightSlot, private_weight, weight_slot};
use bytes::Bytes;
use whittle_ir::{Attribute, DataType, Graph, IrError, Node, NodeId, Tensor, ValueId};
use whittle_passes::pass::{Pass, PassCx, PassError};
use whittle_passes::rule::{Costed, LossyRule, Patch, RuleCx, run_lossy};

/// Stores constant f32 weights as int8 (symmetric, zero point 0) with a
/// `DequantizeLinear` in front of the op that reads them:
///
/// | op | weight | channel axis |
/// |---|---|---|
/// | MatMul | input 1, rank ≥ 2 | last (output columns) |
/// | Gemm | input B | 0 with transB=1, else 1 |
/// | Conv | input W | 0 |
/// | ConvTranspose | input W | 1 |
/// | Gather (axis 0) | input 0, rank 2 (embedding table) | 1, applied after the Gather |
///
/// Guards: the weight is an f32 initializer (not a graph input or output) read by this
/// node alone, with at least `min_elements` elements; per-channel needs opset ≥ 13 (the
/// `axis` attribute), per-tensor ≥ 10. For a Gather the int8 rows are gathered and then
/// dequantized, so the table is never expanded whole.
pub struct QuantizeWeights {
    /// One scale per output channel (default) or one per tensor.
    pub per_channel: bool,
    /// Smaller weights stay float (their bytes do not matter, their error might).
    pub min_elements: u64,
    /// The ops whose weights are taken (int8-dynamic uses this pass for Gather only).
    pub ops: &'static [&'static str],
    /// Write `Cast(int8 → f32) → Mul(scales)` instead of `DequantizeLinear` (not for
    /// Gather tables). Runtimes fold it to the float weight at load, so compute stays
    /// float; ONNX Runtime turns `DequantizeLinear → MatMul` into MatMulNBits, which by
    /// default quantizes the activations too.
    pub cast: bool,
}

/// Every op whose weight int8-weights can store.
pub const ALL_OPS: &[&str] = &["MatMul", "Gemm", "Conv", "ConvTranspose", "Gather"];

impl Default for QuantizeWeights {
    fn default() -> Self {
        QuantizeWeights {
            per_channel: true,
            min_elements: super::DEFAULT_MIN_ELEMENTS,
            ops: ALL_OPS,
            cast: false,
        }
    }
}

/// Where an op keeps its weight and along which axis its channels run.
pub(super) struct Target {
    pub(super) slot: usize,
    pub(super) axis: usize,
    pub(super) gather: bool,
    /// Rank of the op's output (a Gather's DequantizeLinear axis is its last).
    out_rank: Option<usize>,
}

/// The weight `n` reads, if its op is one whose weights are stored compressed
/// ([`weight_slot`]).
pub(super) fn target(g: &Graph, n: NodeId) -> Option<Target> {
    let WeightSlot { slot, axis, gather } = weight_slot(g, n)?;
    Some(Target {
        slot,
        axis,
        gather,
        out_rank: None,
    })
}

impl Pass for QuantizeWeights {
    fn name(&self) -> &'static str {
        "quantize-int8-weights"
    }

    fn description(&self) -> &'static str {
        "store float weights as int8 behind Cast->Mul or DequantizeLinear (lossy; --quantize int8-weights)"
    }

    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Lossy
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        run_lossy(Pass::name(self), self, g, is_subgraph, cx)
    }
}

impl LossyRule for QuantizeWeights {
    fn name(&self) -> &'static str {
        "int8-weights"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Costed> {
        let need = if self.per_channel { 13 } else { 10 };
        if cx.opset < need {
            return None;
        }
        let m = self.matched(g, n, cx)?;
        let q = symmetric_int8(
            &m.values,
            &m.dims,
            self.per_channel.then_some(m.target.axis),
        );
        let note = format!(
            "int8 {} {:?}: relative weight error {:.2e}",
            g.value(m.w).name(),
            m.tensor.dims,
            q.relative_error
        );
        let (cast, per_channel) = (self.cast && !m.target.gather, self.per_channel);
        let patch: Patch = Box::new(move |g: &mut Graph| {
            if cast {
                patch_cast(g, n, &m.target, m.w, &m.tensor, q, per_channel)
            } else {
                patch(g, n, &m.target, m.w, &m.tensor, q, per_channel)
            }
        });
        Some(Costed { patch, note })
    }
}

/// A weight int8-weights will store: where it sits, the tensor and its values.
struct Matched {
    target: Target,
    w: ValueId,
    tensor: Tensor,
    values: Vec<f32>,
    dims: Vec<usize>,
}

impl QuantizeWeights {
    /// Every guard of node `n`; the weight and its values when they all hold.
    fn matched(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Matched> {
        if !self.ops.contains(&g.node(n).op()) {
            return None;
        }
        let mut target = target(g, n)?;
        let w = g.node(n).input(target.slot)?;
        if !eligible(g, w, self.min_elements) {
            return None;
        }
        if target.gather && self.per_channel {
            // DequantizeLinear needs the axis of the gathered rows: the output's rank,
            // from the main graph's facts, or a subgraph's own declaration.
            let y = g.node(n).output(0)?;
            target.out_rank = match cx.facts {
                Some(facts) => facts.fact(y)?.dims.as_ref().map(Vec::len),
                None => g.value(y).info.ty.as_ref()?.dims().map(|d| d.len()),
            };
            target.out_rank?;
        }
        let tensor = g.value(w).initializer()?.clone();
        let values = tensor.to_f32_vec().ok()?;
        let dims = tensor.dims.iter().map(|d| *d as usize).collect();
        Some(Matched {
            target,
            w,
            tensor,
            values,
            dims,
        })
    }
}

/// The weight guard every quantize mode shares ([`private_weight`]).
pub(super) fn eligible(g: &Graph, wv: ValueId, min_elements: u64) -> bool {
    private_weight(g, wv, min_elements)
}

/// The int8 values of `q` as an initializer `<base>_int8` shaped like `w`.
fn int8_initializer(g: &mut Graph, base: &str, w: &Tensor, q: &Int8) -> ValueId {
    let raw: Vec<u8> = q.values.iter().map(|v| *v as u8).collect();
    g.add_initializer(
        &format!("{base}_int8"),
        Tensor::from_raw(DataType::Int8, w.dims.clone(), Bytes::from(raw)),
    )
}

/// Replaces the weight by int8 + scale + zero point and inserts the DequantizeLinear.
pub(super) fn patch(
    g: &mut Graph,
    n: NodeId,
    t: &Target,
    wv: ValueId,
    w: &Tensor,
    q: Int8,
    per_channel: bool,
) -> Result<(), IrError> {
    let base = g.value(wv).name().to_string();
    let qv = int8_initializer(g, &base, w, &q);
    let scale_dims = if per_channel {
        vec![q.scales.len() as i64]
    } else {
        vec![]
    };
    let scale = g.add_initializer(
        &format!("{base}_scale"),
        Tensor::from_f32(scale_dims.clone(), &q.scales),
    );
    let zp = g.add_initializer(
        &format!("{base}_zero_point"),
        Tensor::from_raw(
            DataType::Int8,
            scale_dims,
            Bytes::from(vec![0u8; q.scales.len()]),
        ),
    );
    if t.gather {
        return patch_gather(g, n, qv, scale, zp, t.out_rank.filter(|_| per_channel));
    }
    let dq_out = g.fresh_value(&format!("{base}_dequantized"));
    let mut dq = Node::new("DequantizeLinear").with_name(format!("{base}_DequantizeLinear"));
    if per_channel {
        dq = dq.with_attr(Attribute::int("axis", t.axis as i64));
    }
    g.add_node_at(
        n,
        dq,
        vec![Some(qv), Some(scale), Some(zp)],
        vec![Some(dq_out)],
    )?;
    g.set_input(n, t.slot, Some(dq_out));
    g.remove_initializer(wv);
    Ok(())
}

/// Replaces the weight by int8 + scale and reads it through `Cast → Mul`, the scale
/// shaped to broadcast along the channel axis.
fn patch_cast(
    g: &mut Graph,
    n: NodeId,
    t: &Target,
    wv: ValueId,
    w: &Tensor,
    q: Int8,
    per_channel: bool,
) -> Result<(), IrError> {
    let base = g.value(wv).name().to_string();
    let qv = int8_initializer(g, &base, w, &q);
    let mut scale_dims = vec![1i64; w.dims.len()];
    if per_channel {
        scale_dims[t.axis] = q.scales.len() as i64;
    }
    let scale = g.add_initializer(
        &format!("{base}_scale"),
        Tensor::from_f32(scale_dims, &q.scales),
    );
    let cast = g.fresh_value(&format!("{base}_f32"));
    let out = g.fresh_value(&format!("{base}_dequantized"));
    g.add_node_at(
        n,
        Node::new("Cast")
            .with_name(format!("{base}_Cast"))
            .with_attr(Attribute::int("to", i64::from(DataType::Float.code()))),
        vec![Some(qv)],
        vec![Some(cast)],
    )?;
    g.add_node_at(
        n,
        Node::new("Mul").with_name(format!("{base}_Scale")),
        vec![Some(cast), Some(scale)],
        vec![Some(out)],
    )?;
    g.set_input(n, t.slot, Some(out));
    g.remove_initializer(wv);
    Ok(())
}

/// Gather(int8 table, ids) → DequantizeLinear(axis = last) → the Gather's old output.
fn patch_gather(
    g: &mut Graph,
    n: NodeId,
    qv: ValueId,
    scale: ValueId,
    zp: ValueId,
    axis_of_rank: Option<usize>,
) -> Result<(), IrError> {
    let old = g.node(n).clone();
    let (Some(table), Some(ids), Some(y)) = (old.input(0), old.input(1), old.output(0)) else {
        return Ok(());
    };
    let gathered = g.fresh_value("gathered_int8");
    let mut gather = Node::new("Gather").with_name(old.name().to_string());
    for a in &old.attributes {
        gather = gather.with_attr(a.clone());
    }
    g.remove_node(n);
    g.add_node(gather, vec![Some(qv), Some(ids)], vec![Some(gathered)])?;
    let mut dq =
        Node::new("DequantizeLinear").with_name(format!("{}_DequantizeLinear", old.name()));
    if let Some(rank) = axis_of_rank {
        // The table's columns are the last axis of the gathered rows.
        dq = dq.with_attr(Attribute::int("axis", rank as i64 - 1));
    }
    g.add_node(
        dq,
        vec![Some(gathered), Some(scale), Some(zp)],
        vec![Some(y)],
    )?;
    g.remove_initializer(table);
    Ok(())
}
