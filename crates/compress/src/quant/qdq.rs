//! `quantize-int8-static`: the QDQ format with activation ranges from calibration data.

use super::math::{REDUCED_RANGE, affine_uint8, bias_int32, symmetric};
use super::ranges::Range;
use super::weights::{eligible, patch, target};
use bytes::Bytes;
use std::collections::HashMap;
use whittle_ir::infer::Inference;
use whittle_ir::{Attribute, DataType, Graph, IrError, Node, NodeId, Slot, Tensor, ValueId};
use whittle_passes::guard::is_op;
use whittle_passes::pass::{Grant, Pass, PassCx, PassError, anchor};

/// Conv, MatMul and Gemm with a constant f32 weight compute on quantized values:
///
/// ```text
/// x → QuantizeLinear(s_x, z_x) → DequantizeLinear ─┐          (uint8, from calibration)
/// W: int8 per output channel → DequantizeLinear ───┼→ op → [Relu] → Q → DQ → readers
/// b: int32, scale s_x·s_w → DequantizeLinear ──────┘          (uint8, from calibration)
/// ```
///
/// This is the form ONNX Runtime turns into QLinearConv/QLinearMatMul and tract runs as
/// written. Weights keep to [−64, 64] unless `full_range`: ONNX Runtime's u8×s8 kernels
/// on x86 without VNNI saturate beyond it (on vgg_digits, full-range per-channel weights
/// cost 0.45 accuracy points in ORT and nothing in tract). A result read only by a Relu is quantized after the Relu (its range starts at
/// 0, so every step goes to what survives it). A quantized value feeds every reader of
/// the float one; graph outputs stay float. Guards: those of int8-weights for W (f32
/// initializer, one reader, not an input or output, ≥ `min_elements`); x is f32; both
/// ranges were observed; the bias is 1-D with one entry per output channel (and Gemm's
/// alpha = beta = 1), else it stays float. Needs opset ≥ 13 (per-channel axis).
#[derive(Clone, Debug)]
pub struct QuantizeStatic {
    /// Calibrated ranges by value name ([`sites`] lists the values that need one).
    pub ranges: HashMap<String, Range>,
    /// One weight scale per output channel (default) or one per tensor.
    pub per_channel: bool,
    /// Smaller weights stay float.
    pub min_elements: u64,
    /// Weights use all of [−127, 127] instead of [−64, 64] (see [`REDUCED_RANGE`]: only
    /// for runtimes whose integer kernels cannot saturate, e.g. VNNI or ARM dot products).
    pub full_range: bool,
}

/// A node int8-static rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    pub node: NodeId,
    /// The activation read.
    pub x: ValueId,
    /// The value quantized after the op: its output, or the output of the Relu after it.
    pub result: ValueId,
}

/// The nodes of `g` int8-static would rewrite, given inferred `facts`.
pub fn sites(g: &Graph, facts: &Inference, min_elements: u64) -> Result<Vec<Site>, IrError> {
    Ok(g.nodes_in_order()?
        .into_iter()
        .filter_map(|n| site_at(g, n, facts, min_elements))
        .collect())
}

/// The values whose ranges int8-static needs: each site's activation and result, once.
pub fn observed_values(sites: &[Site]) -> Vec<ValueId> {
    let mut out: Vec<ValueId> = Vec::new();
    for v in sites.iter().flat_map(|s| [s.x, s.result]) {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn site_at(g: &Graph, n: NodeId, facts: &Inference, min_elements: u64) -> Option<Site> {
    let node = g.node(n);
    if !["Conv", "MatMul", "Gemm"].iter().any(|op| is_op(node, op)) {
        return None;
    }
    let t = target(g, n)?;
    if !eligible(g, node.input(t.slot)?, min_elements) {
        return None;
    }
    let x = node.input(0)?;
    if facts.fact(x)?.elem != Some(DataType::Float) {
        return None;
    }
    let y = node.output(0)?;
    let uses = g.value(y).uses();
    let relu = match uses {
        [u] if !g.is_output(y) && is_op(g.node(u.node), "Relu") => g.node(u.node).output(0),
        _ => None,
    };
    Some(Site {
        node: n,
        x,
        result: relu.unwrap_or(y),
    })
}

impl Pass for QuantizeStatic {
    fn name(&self) -> &'static str {
        "quantize-int8-static"
    }

    fn description(&self) -> &'static str {
        "QDQ int8 from calibrated activation ranges (lossy; --quantize int8-static --calibrate)"
    }

    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Lossy
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        if cx.opset < 13 || is_subgraph {
            return Ok(false); // calibration observed the main graph only
        }
        let err = |source| PassError::Ir {
            pass: "quantize-int8-static",
            source,
        };
        let Some(facts) = cx.facts.take() else {
            return Ok(false);
        };
        let found = sites(g, &facts, self.min_elements).map_err(err);
        cx.facts = Some(facts);
        let mut changed = false;
        for mut s in found? {
            if cx
                .settings
                .deny_ops
                .iter()
                .any(|o| o == g.node(s.node).op())
            {
                continue;
            }
            // An earlier rewrite may have quantized this activation: read it afresh.
            let Some(x) = g.node(s.node).input(0) else {
                continue;
            };
            s.x = x;
            let (Some(rx), Some(ry)) = (self.range(g, s.x), self.range(g, s.result)) else {
                continue;
            };
            let at = anchor(g, s.node);
            match cx.grant(self.name(), "int8-static", &at) {
                Grant::Yes => {}
                Grant::Denied => continue,
                Grant::Spent => return Ok(changed),
            }
            let note = self.rewrite(g, &s, rx, ry).map_err(err)?;
            cx.journal.notes.push((at, note));
            changed = true;
        }
        Ok(changed)
    }
}

impl QuantizeStatic {
    /// The range of `v`, or a marker range when `v` is already dequantized (it is read
    /// as it is).
    fn range(&self, g: &Graph, v: ValueId) -> Option<Range> {
        if dequantized(g, v) {
            return Some(Range { lo: 0.0, hi: 0.0 });
        }
        self.ranges.get(g.value(v).name()).copied()
    }

    /// Quantizes the activation, weight, bias and result of site `s`; returns the note
    /// for the report.
    fn rewrite(&self, g: &mut Graph, s: &Site, rx: Range, ry: Range) -> Result<String, IrError> {
        let n = s.node;
        let upstream = dequantized(g, s.x);
        let sx = match quantize_value(g, n, s.x, rx)? {
            Some(sx) => sx,
            None => input_scale(g, s.x).unwrap_or(1.0),
        };
        let t = target(g, n).ok_or_else(|| missing(g, n, "weight"))?;
        let wv = g
            .node(n)
            .input(t.slot)
            .ok_or_else(|| missing(g, n, "weight"))?;
        let w = g
            .value(wv)
            .initializer()
            .cloned()
            .ok_or_else(|| missing(g, n, "weight"))?;
        let dims: Vec<usize> = w.dims.iter().map(|d| *d as usize).collect();
        let values = w.to_f32_vec()?;
        let qmax = if self.full_range {
            127.0
        } else {
            REDUCED_RANGE
        };
        let q = symmetric(&values, &dims, self.per_channel.then_some(t.axis), qmax);
        let (scales, error) = (q.scales.clone(), q.relative_error);
        patch(g, n, &t, wv, &w, q, self.per_channel)?;
        let bias = quantize_bias(g, n, sx, &scales, self.per_channel)?;
        quantize_value(g, n, s.result, ry)?;
        // An input quantized upstream has no range of its own: its scale is the one the
        // producing layer's result got.
        let input = match upstream {
            true => format!("quantized upstream (scale {sx:.3e})"),
            false => format!("in [{:.4}, {:.4}]", rx.lo, rx.hi),
        };
        Ok(format!(
            "int8 static: {} {input}, result in [{:.4}, {:.4}], weight error {:.2e}{}",
            g.value(s.x).name(),
            ry.lo,
            ry.hi,
            error,
            if bias { ", bias int32" } else { "" }
        ))
    }
}

fn missing(g: &Graph, n: NodeId, what: &str) -> IrError {
    IrError::Invariant(format!(
        "{}: {what} vanished while quantizing",
        anchor(g, n)
    ))
}

/// True when `v` is the output of a DequantizeLinear (already quantized upstream).
fn dequantized(g: &Graph, v: ValueId) -> bool {
    g.value(v)
        .producer()
        .is_some_and(|(p, _)| is_op(g.node(p), "DequantizeLinear"))
}

/// The scale of the DequantizeLinear that produced `v`, when it is a constant scalar.
fn input_scale(g: &Graph, v: ValueId) -> Option<f32> {
    let (p, _) = g.value(v).producer()?;
    let scale = g.constant(g.node(p).input(1)?)?;
    match scale.to_f32_vec().ok()?.as_slice() {
        [s] => Some(*s),
        _ => None,
    }
}

/// Puts `QuantizeLinear → DequantizeLinear` (uint8, range `r`) on `v` and makes every
/// node that read `v` read the dequantized value instead (graph outputs keep `v`).
/// Returns the scale, or None when `v` was already dequantized or has no readers.
fn quantize_value(
    g: &mut Graph,
    anchor: NodeId,
    v: ValueId,
    r: Range,
) -> Result<Option<f32>, IrError> {
    if dequantized(g, v) {
        return Ok(None);
    }
    let readers: Vec<(NodeId, usize)> = g
        .value(v)
        .uses()
        .iter()
        .filter_map(|u| match u.slot {
            Slot::Input(k) => Some((u.node, k as usize)),
            Slot::Capture(_) => None,
        })
        .collect();
    if readers.is_empty() {
        return Ok(None); // a graph output nothing else reads stays float
    }
    let (scale, zp) = affine_uint8(r.lo, r.hi);
    let name = g.value(v).name().to_string();
    let s = g.add_initializer(&format!("{name}_scale"), Tensor::from_f32(vec![], &[scale]));
    let z = g.add_initializer(
        &format!("{name}_zero_point"),
        Tensor::from_raw(DataType::Uint8, vec![], Bytes::from(vec![zp])),
    );
    let q = g.fresh_value(&format!("{name}_quantized"));
    let dq = g.fresh_value(&format!("{name}_dequantized"));
    g.add_node_at(
        anchor,
        Node::new("QuantizeLinear").with_name(format!("{name}_QuantizeLinear")),
        vec![Some(v), Some(s), Some(z)],
        vec![Some(q)],
    )?;
    g.add_node_at(
        anchor,
        Node::new("DequantizeLinear").with_name(format!("{name}_DequantizeLinear")),
        vec![Some(q), Some(s), Some(z)],
        vec![Some(dq)],
    )?;
    for (node, slot) in readers {
        g.set_input(node, slot, Some(dq));
    }
    Ok(Some(scale))
}

/// Stores the bias of Conv/Gemm `n` as int32 on the scale s_x·s_w behind a
/// DequantizeLinear, when it is a constant 1-D f32 tensor with one entry per output
/// channel read by `n` alone (and Gemm's alpha = beta = 1). Returns whether it did.
fn quantize_bias(
    g: &mut Graph,
    n: NodeId,
    sx: f32,
    sw: &[f32],
    per_channel: bool,
) -> Result<bool, IrError> {
    let node = g.node(n);
    let float = |name: &str| node.attr(name).and_then(|a| a.f).unwrap_or(1.0);
    let is_gemm = is_op(node, "Gemm");
    if !(is_op(node, "Conv") || is_gemm && float("alpha") == 1.0 && float("beta") == 1.0) {
        return Ok(false);
    }
    let Some(bv) = node.input(2) else {
        return Ok(false);
    };
    let Some(b) = g.value(bv).initializer().cloned() else {
        return Ok(false);
    };
    let channels = if per_channel {
        sw.len()
    } else {
        b.dims.first().copied().unwrap_or(0) as usize
    };
    if channels == 0 || !eligible(g, bv, 1) || b.dims.len() != 1 || b.dims[0] as usize != channels {
        return Ok(false);
    }
    let (values, scales) = bias_int32(&b.to_f32_vec()?, sx, sw);
    let base = g.value(bv).name().to_string();
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let qv = g.add_initializer(
        &format!("{base}_int32"),
        Tensor::from_raw(DataType::Int32, b.dims.clone(), Bytes::from(raw)),
    );
    let (scale_t, zp_t) = if per_channel {
        let c = scales.len();
        (
            Tensor::from_f32(vec![c as i64], &scales),
            Tensor::from_raw(
                DataType::Int32,
                vec![c as i64],
                Bytes::from(vec![0u8; 4 * c]),
            ),
        )
    } else {
        (
            Tensor::from_f32(vec![], &scales[..1.min(scales.len())]),
            Tensor::from_raw(DataType::Int32, vec![], Bytes::from(vec![0u8; 4])),
        )
    };
    let s = g.add_initializer(&format!("{base}_scale"), scale_t);
    let z = g.add_initializer(&format!("{base}_zero_point"), zp_t);
    let out = g.fresh_value(&format!("{base}_dequantized"));
    let mut dq = Node::new("DequantizeLinear").with_name(format!("{base}_DequantizeLinear"));
    if per_channel {
        dq = dq.with_attr(Attribute::int("axis", 0));
    }
    g.add_node_at(n, dq, vec![Some(qv), Some(s), Some(z)], vec![Some(out)])?;
    g.set_input(n, 2, Some(out));
    g.remove_initializer(bv);
    Ok(true)
}
