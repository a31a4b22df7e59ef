//! `quantize-fp16-weights`: float weights stored as float16, cast back to float32.

use super::weights::{eligible, target};
use bytes::Bytes;
use half::f16;
use whittle_ir::{Attribute, DataType, Graph, IrError, Node, NodeId, Tensor, ValueId};
use whittle_passes::pass::{Pass, PassCx, PassError};
use whittle_passes::rule::{Costed, LossyRule, Patch, RuleCx, run_lossy};

/// Stores the same weights as [`super::QuantizeWeights`] as float16 with a `Cast(to=f32)`
/// in front of their reader; compute stays float32 (half the weight bytes, every
/// runtime runs it). A Gather's table is gathered as f16 rows and the rows are cast.
///
/// Guards: those of int8-weights, plus every value finite and within f16's range
/// (|w| ≤ 65504): a weight that would overflow stays f32.
pub struct Fp16Weights {
    /// Weights with fewer elements stay f32.
    pub min_elements: u64,
}

impl Default for Fp16Weights {
    fn default() -> Self {
        Fp16Weights {
            min_elements: super::DEFAULT_MIN_ELEMENTS,
        }
    }
}

impl Pass for Fp16Weights {
    fn name(&self) -> &'static str {
        "quantize-fp16-weights"
    }

    fn description(&self) -> &'static str {
        "store float weights as float16 behind a Cast (lossy; --quantize fp16-weights)"
    }

    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Lossy
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        run_lossy(Pass::name(self), self, g, is_subgraph, cx)
    }
}

impl LossyRule for Fp16Weights {
    fn name(&self) -> &'static str {
        "fp16-weights"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Costed> {
        let t = target(g, n)?;
        let wv = g.node(n).input(t.slot)?;
        if !eligible(g, wv, self.min_elements) {
            return None;
        }
        let values = g.value(wv).initializer()?.to_f32_vec().ok()?;
        if values
            .iter()
            .any(|v| !v.is_finite() || v.abs() > f16::MAX.to_f32())
        {
            return None;
        }
        let note = format!(
            "fp16 {}: relative weight error {:.2e}",
            g.value(wv).name(),
            relative_error(&values)
        );
        let patch: Patch =
            Box::new(move |g: &mut Graph| patch(g, n, t.slot, t.gather, wv, &values));
        Some(Costed { patch, note })
    }
}

/// ‖w − f16(w)‖ / ‖w‖.
fn relative_error(values: &[f32]) -> f64 {
    let (err2, norm) = values.iter().fold((0f64, 0f64), |(e, n), v| {
        let back = f64::from(f16::from_f32(*v).to_f32());
        (
            e + (f64::from(*v) - back).powi(2),
            n + f64::from(*v).powi(2),
        )
    });
    if norm > 0.0 {
        (err2 / norm).sqrt()
    } else {
        0.0
    }
}

fn cast_to_f32(name: String) -> Node {
    Node::new("Cast")
        .with_name(name)
        .with_attr(Attribute::int("to", i64::from(DataType::Float.code())))
}

/// Replaces the weight by its f16 copy and casts where it is read.
fn patch(
    g: &mut Graph,
    n: NodeId,
    slot: usize,
    gather: bool,
    wv: ValueId,
    values: &[f32],
) -> Result<(), IrError> {
    let base = g.value(wv).name().to_string();
    let dims = g
        .value(wv)
        .initializer()
        .map(|t| t.dims.clone())
        .unwrap_or_default();
    let raw: Vec<u8> = values
        .iter()
        .flat_map(|v| f16::from_f32(*v).to_le_bytes())
        .collect();
    let hv = g.add_initializer(
        &format!("{base}_fp16"),
        Tensor::from_raw(DataType::Float16, dims, Bytes::from(raw)),
    );
    if gather {
        // Gather(f16 table, ids) → Cast → the Gather's old output.
        let old = g.node(n).clone();
        let (Some(ids), Some(y)) = (old.input(1), old.output(0)) else {
            return Ok(());
        };
        let rows = g.fresh_value("gathered_fp16");
        let mut gather = Node::new("Gather").with_name(old.name().to_string());
        for a in &old.attributes {
            gather = gather.with_attr(a.clone());
        }
        g.remove_node(n);
        g.add_node(gather, vec![Some(hv), Some(ids)], vec![Some(rows)])?;
        g.add_node(
            cast_to_f32(format!("{}_Cast", old.name())),
            vec![Some(rows)],
            vec![Some(y)],
        )?;
    } else {
        let out = g.fresh_value(&format!("{base}_f32"));
        g.add_node_at(
            n,
            cast_to_f32(format!("{base}_Cast")),
            vec![Some(hv)],
            vec![Some(out)],
        )?;
        g.set_input(n, slot, Some(out));
    }
    g.remove_initializer(wv);
    Ok(())
}
