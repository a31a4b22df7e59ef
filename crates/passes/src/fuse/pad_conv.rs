//! A zero `Pad` of the spatial axes before a `Conv` becomes the Conv's own padding.

use crate::guard::{const_all, const_ints, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{Graph, NodeId};

/// Conv(Pad(x, pads, 0), W) = Conv(x, W) with the pads added to the Conv's; likewise
/// AveragePool with `count_include_pad=1`. Not MaxPool (it pads with −∞) nor averages
/// that exclude padding: a zero Pad would change those.
///
/// Guards: constant mode with value 0 (or absent); non-negative pads, none on the batch
/// and channel axes; no `axes` input; the Conv has explicit padding (auto_pad NOTSET);
/// the padded tensor feeds only the Conv.
pub struct PadIntoConv;

impl Rule for PadIntoConv {
    fn name(&self) -> &'static str {
        "pad-into-conv"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let conv = g.node(n);
        // AveragePool counts zero padding the same way only with count_include_pad=1.
        let avg_incl = is_op(conv, "AveragePool")
            && conv.attr("count_include_pad").and_then(|a| a.i) == Some(1);
        if !is_op(conv, "Conv") && !avg_incl {
            return None;
        }
        let auto = conv
            .attr("auto_pad")
            .and_then(|a| a.s.as_deref())
            .unwrap_or(b"NOTSET");
        if auto != b"NOTSET" {
            return None;
        }
        let p = conv.input(0)?;
        let (pad_id, _) = g.value(p).producer()?;
        let pad = g.node(pad_id);
        if !is_op(pad, "Pad") || !single_use(g, p) || cx.opset < 11 {
            return None;
        }
        let mode = pad
            .attr("mode")
            .and_then(|a| a.s.as_deref())
            .unwrap_or(b"constant");
        if mode != b"constant" || pad.input(3).is_some() {
            return None;
        }
        if let Some(v) = pad.input(2)
            && (g.constant(v).is_none() || !const_all(g, v, 0.0))
        {
            return None;
        }
        let pads = const_ints(g, pad.input(1))?;
        let r = pads.len() / 2;
        if r < 3 || pads.len() != 2 * r || pads.iter().any(|v| *v < 0) {
            return None;
        }
        if pads[0] != 0 || pads[1] != 0 || pads[r] != 0 || pads[r + 1] != 0 {
            return None;
        }
        let s = r - 2;
        let old = conv
            .attr("pads")
            .map(|a| a.ints.to_vec())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec![0; 2 * s]);
        if old.len() != 2 * s {
            return None;
        }
        let new: Vec<i64> = (0..2 * s)
            .map(|i| {
                old[i]
                    + if i < s {
                        pads[2 + i]
                    } else {
                        pads[r + 2 + i - s]
                    }
            })
            .collect();
        let x = pad.input(0)?;
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 0, Some(x));
            g.node_mut(n).set_attr(Attribute::ints("pads", new));
            g.remove_node(pad_id);
            Ok(())
        }))
    }
}
