//! `quantize-int8-dynamic`: MatMul/Gemm computed in integers with activations quantized
//! at run time.
//!
//! One scale for a whole activation tensor is what `DynamicQuantizeLinear` gives, and in
//! transformers it is what loses: a few tokens (and the padding) carry values tens of
//! times larger than the rest, so most rows get a handful of levels. By default each row
//! (the last axis: one token's features) is first divided by its own largest magnitude
//! and the product multiplied back, which costs three cheap ops per activation and one per
//! layer. On all-MiniLM-L6-v2 that moved the mean-pooled cosine from 0.9925 to 0.996.

use super::QuantError;
use super::act_scale::RowNeed;
use super::conv_integer::{self, conv_site};
use super::dense::{Dense, dense, k_of, kn_values};
use super::math::{REDUCED_RANGE, symmetric};
use super::weights::eligible;
use bytes::Bytes;
use std::collections::HashMap;
use whittle_eval::probe;
use whittle_ir::infer::Inference;
use whittle_ir::{Attribute, DataType, Graph, IrError, Model, Node, NodeId, Tensor, ValueId};
use whittle_passes::pass::{Grant, Pass, PassCx, PassError, anchor};

/// `y = MatMul(x, W)` (and `Gemm(x, W, c)` with alpha = beta = 1, transA = 0) with a
/// constant 2-D f32 weight becomes
///
/// ```text
/// xq, xs, xz = DynamicQuantizeLinear(x)            (uint8, per tensor, at run time)
/// acc        = MatMulInteger(xq, Wq, xz, Wz)        (Wq int8 [K, N], Wz zeros [N])
/// y          = Mul(Cast<f32>(acc), Mul(xs, Ws))     (Ws per output column)   [+ c]
/// ```
///
/// With [`ActScale::Row`] (the default) x is first divided by each row's largest
/// magnitude `r = Max(ReduceMax(Abs(x), axis −1), tiny)` and y multiplied by `r` before
/// the addend: `y = MatMulInteger(DQL(x / r)) · xs·Ws · r [+ c]`.
///
/// With [`ActScale::Auto`] only the layers in `row_sites` are scaled per row and the rest
/// per tensor (the budget search of `--act-scale auto` picks them).
///
/// With `Conv` in `ops`, convolutions become `ConvInteger` the same way (see
/// [`super::conv_integer`]; always one scale per tensor). Activations that feed several
/// such ops are quantized once.
/// Guards: those of int8-weights (one reader, f32 initializer, not an input or output,
/// ≥ min_elements); x is known to be f32; opset ≥ 11.
pub struct DynamicInt8 {
    /// Weights with fewer elements stay float.
    pub min_elements: u64,
    /// The op types taken: MatMul and Gemm by default; Conv (as ConvInteger) when listed
    /// (`--ops`).
    pub ops: Vec<String>,
    /// Weights use all of [−127, 127] instead of [−64, 64] (see
    /// [`super::math::REDUCED_RANGE`]: ORT's MatMulInteger saturates beyond it on x86
    /// CPUs without VNNI).
    pub full_range: bool,
    /// How MatMul/Gemm activations are scaled before quantization.
    pub act_scale: ActScale,
    /// With [`ActScale::Auto`]: the sites (as the journal names them) scaled per row.
    pub row_sites: Vec<String>,
}

/// The granularity of a MatMul/Gemm activation's run-time quantization scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ActScale {
    /// One scale per row (last axis), from the row's largest magnitude (`--act-scale row`).
    #[default]
    Row,
    /// One scale for the whole tensor: `DynamicQuantizeLinear` alone (`--act-scale tensor`).
    Tensor,
    /// Per tensor, which ORT runs faster, except the layers a whole-model budget needs per
    /// row (`--act-scale auto`; the pass takes them from `row_sites`).
    Auto,
}

impl std::str::FromStr for ActScale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "row" => Ok(ActScale::Row),
            "tensor" => Ok(ActScale::Tensor),
            "auto" => Ok(ActScale::Auto),
            _ => Err(format!("act-scale '{s}': expected row, tensor or auto")),
        }
    }
}

impl Default for DynamicInt8 {
    fn default() -> Self {
        DynamicInt8 {
            min_elements: super::DEFAULT_MIN_ELEMENTS,
            ops: DENSE_OPS.iter().map(|s| s.to_string()).collect(),
            full_range: false,
            act_scale: ActScale::default(),
            row_sites: Vec::new(),
        }
    }
}

/// The ops int8-dynamic takes unless told otherwise.
pub const DENSE_OPS: &[&str] = &["MatMul", "Gemm"];

/// Every op int8-dynamic can take.
pub const DYNAMIC_OPS: &[&str] = &["MatMul", "Gemm", "Conv"];

impl DynamicInt8 {
    fn takes(&self, op: &str) -> bool {
        self.ops.iter().any(|o| o == op)
    }

    /// The activation scaling at `site`: Auto resolves to Row for `row_sites`, else Tensor.
    fn scale_at(&self, site: &str) -> ActScale {
        match self.act_scale {
            ActScale::Auto if self.row_sites.iter().any(|s| s == site) => ActScale::Row,
            ActScale::Auto => ActScale::Tensor,
            s => s,
        }
    }

    /// The largest weight magnitude in quantization steps.
    fn qmax(&self) -> f32 {
        if self.full_range {
            127.0
        } else {
            REDUCED_RANGE
        }
    }
}

impl DynamicInt8 {
    /// For `--act-scale auto`: every dense layer this pass would take in `model`, by site
    /// (as the journal names it), with what scaling its activation per tensor costs over
    /// per row ([`RowNeed::cost`]), estimated on the float model over `sets`.
    pub fn row_costs(
        &self,
        runtime: &whittle_eval::Runtime,
        model: &Model,
        facts: &Inference,
        sets: &[Vec<Tensor>],
    ) -> Result<Vec<(String, f64)>, QuantError> {
        let g = &model.graph;
        let order = g.nodes_in_order().map_err(|source| PassError::Ir {
            pass: "quantize-int8-dynamic",
            source,
        })?;
        let sites: Vec<(String, ValueId, usize)> = order
            .into_iter()
            .filter(|n| self.takes(g.node(*n).op()))
            .filter_map(|n| {
                let m = dense(g, n, Some(facts))?;
                if !eligible(g, m.w, self.min_elements) {
                    return None;
                }
                Some((anchor(g, n), m.x, k_of(g, &m)?))
            })
            .collect();
        let xs: Vec<ValueId> = sites.iter().map(|s| s.1).collect();
        let mut needs = vec![RowNeed::default(); sites.len()];
        probe(
            runtime,
            model,
            &xs,
            sets,
            "int8-dynamic (act-scale auto)",
            |seen| {
                for ((need, (name, _, k)), t) in needs.iter_mut().zip(&sites).zip(seen) {
                    let x = t
                        .to_f32_vec()
                        .map_err(|e| QuantError::Data(format!("activation of '{name}': {e}")))?;
                    need.add(&x, *k);
                }
                Ok::<(), QuantError>(())
            },
        )?;
        Ok(sites
            .into_iter()
            .zip(needs)
            .map(|((s, _, _), n)| (s, n.cost()))
            .collect())
    }
}

impl Pass for DynamicInt8 {
    fn name(&self) -> &'static str {
        "quantize-int8-dynamic"
    }

    fn description(&self) -> &'static str {
        "MatMul/Gemm in int8 with run-time activation quantization (lossy; --quantize int8-dynamic)"
    }

    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Lossy
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        if cx.opset < 11 || is_subgraph {
            return Ok(false); // subgraphs have no facts to prove x is f32
        }
        let err = |source| PassError::Ir {
            pass: "quantize-int8-dynamic",
            source,
        };
        let mut shared = Activations::default();
        let mut changed = false;
        for n in g.nodes_in_order().map_err(err)? {
            let op = g.node(n).op();
            if cx.denies_op(op) || !self.takes(op) {
                continue;
            }
            let done = if let Some(c) = conv_site(g, n, cx, self.min_elements) {
                self.conv(g, n, &c, cx, &mut shared).map_err(err)?
            } else if let Some(d) = self.dense_site(g, n, cx) {
                self.dense(g, n, d, cx, &mut shared).map_err(err)?
            } else {
                continue;
            };
            match done {
                Grant::Yes => changed = true,
                Grant::Denied => {}
                Grant::Spent => return Ok(changed),
            }
        }
        Ok(changed)
    }
}

/// Activations already quantized in this run (each is quantized once, whatever reads it).
#[derive(Default)]
struct Activations {
    /// Per tensor: `DynamicQuantizeLinear(x)`'s outputs.
    tensor: HashMap<ValueId, [ValueId; 3]>,
    /// Per row: x divided by its rows' peaks, then quantized.
    rows: HashMap<ValueId, Scaled>,
}

impl Activations {
    /// `x` quantized per tensor, placed before `anchor` the first time it is asked for.
    fn per_tensor(
        &mut self,
        g: &mut Graph,
        anchor: NodeId,
        x: ValueId,
    ) -> Result<[ValueId; 3], IrError> {
        if let Some(v) = self.tensor.get(&x) {
            return Ok(*v);
        }
        let v = quantize_input(g, anchor, x)?;
        self.tensor.insert(x, v);
        Ok(v)
    }

    /// `x` as `scale` asks, placed before `anchor` the first time it is asked for.
    fn scaled(
        &mut self,
        g: &mut Graph,
        anchor: NodeId,
        x: ValueId,
        scale: ActScale,
        opset: i64,
    ) -> Result<Scaled, IrError> {
        match scale {
            ActScale::Tensor => Ok(Scaled {
                q: self.per_tensor(g, anchor, x)?,
                row: None,
            }),
            ActScale::Row | ActScale::Auto => {
                if let Some(v) = self.rows.get(&x) {
                    return Ok(*v);
                }
                let v = quantize_rows(g, anchor, x, opset)?;
                self.rows.insert(x, v);
                Ok(v)
            }
        }
    }
}

/// A dense layer int8-dynamic takes, with its weight as [K, N].
struct DenseSite {
    m: Dense,
    values: Vec<f32>,
    k: usize,
    cols: usize,
}

impl DynamicInt8 {
    /// Every guard of a MatMul/Gemm at `n`, with the weight's values.
    fn dense_site(&self, g: &Graph, n: NodeId, cx: &PassCx) -> Option<DenseSite> {
        let m = dense(g, n, cx.facts.as_ref())?;
        if !eligible(g, m.w, self.min_elements) {
            return None;
        }
        let (values, k, cols) = kn_values(g, &m)?;
        Some(DenseSite { m, values, k, cols })
    }

    /// Asks for and does the ConvInteger rewrite at `n`.
    fn conv(
        &self,
        g: &mut Graph,
        n: NodeId,
        c: &conv_integer::ConvSite,
        cx: &mut PassCx,
        shared: &mut Activations,
    ) -> Result<Grant, IrError> {
        let at = anchor(g, n);
        let grant = cx.grant(Pass::name(self), "int8-dynamic-conv", &at);
        if grant == Grant::Yes {
            let xq = shared.per_tensor(g, n, c.x)?;
            let note = conv_integer::rewrite(g, n, c, xq, self.qmax())?;
            cx.journal.notes.push((at, note));
        }
        Ok(grant)
    }

    /// Asks for and does the MatMulInteger rewrite of dense layer `d` at `n`.
    fn dense(
        &self,
        g: &mut Graph,
        n: NodeId,
        d: DenseSite,
        cx: &mut PassCx,
        shared: &mut Activations,
    ) -> Result<Grant, IrError> {
        let at = anchor(g, n);
        let grant = cx.grant(Pass::name(self), "int8-dynamic", &at);
        if grant != Grant::Yes {
            return Ok(grant);
        }
        let DenseSite { m, values, k, cols } = d;
        let q = symmetric(&values, &[k, cols], Some(1), self.qmax());
        let base = g.value(m.w).name().to_string();
        let scale = self.scale_at(&at);
        let per = if scale == ActScale::Row {
            "row"
        } else {
            "tensor"
        };
        cx.journal.notes.push((
            at,
            format!(
                "int8-dynamic {base} [{k}, {cols}]: relative weight error {:.2e}, \
                 activations scaled per {per}",
                q.relative_error
            ),
        ));
        let w = weight_initializers(g, &base, &q, k, cols);
        let x = shared.scaled(g, n, m.x, scale, cx.opset)?;
        rewrite(g, n, &m, x, w, &base)?;
        g.remove_initializer(m.w);
        Ok(grant)
    }
}

/// The int8 weight [K, N], its per-column scales and zero points as initializers.
fn weight_initializers(
    g: &mut Graph,
    base: &str,
    q: &super::math::Int8,
    k: usize,
    cols: usize,
) -> [ValueId; 3] {
    let wq = g.add_initializer(
        &format!("{base}_int8"),
        Tensor::from_raw(
            DataType::Int8,
            vec![k as i64, cols as i64],
            Bytes::from(q.values.iter().map(|v| *v as u8).collect::<Vec<u8>>()),
        ),
    );
    let ws = g.add_initializer(
        &format!("{base}_scale"),
        Tensor::from_f32(vec![cols as i64], &q.scales),
    );
    let wz = g.add_initializer(
        &format!("{base}_zero_point"),
        Tensor::from_raw(
            DataType::Int8,
            vec![cols as i64],
            Bytes::from(vec![0u8; cols]),
        ),
    );
    [wq, ws, wz]
}

/// `DynamicQuantizeLinear(x)` placed before `anchor`: (quantized, scale, zero point).
pub(super) fn quantize_input(
    g: &mut Graph,
    anchor: NodeId,
    x: ValueId,
) -> Result<[ValueId; 3], IrError> {
    let name = g.value(x).name().to_string();
    let outs = [
        g.fresh_value(&format!("{name}_quantized")),
        g.fresh_value(&format!("{name}_scale")),
        g.fresh_value(&format!("{name}_zero_point")),
    ];
    let node =
        Node::new("DynamicQuantizeLinear").with_name(format!("{name}_DynamicQuantizeLinear"));
    g.add_node_at(
        anchor,
        node,
        vec![Some(x)],
        outs.iter().map(|v| Some(*v)).collect(),
    )?;
    Ok(outs)
}

/// An activation as a dense layer reads it: quantized (values, scale, zero point), and the
/// per-row magnitudes it was divided by first, if it was.
#[derive(Clone, Copy)]
struct Scaled {
    q: [ValueId; 3],
    row: Option<ValueId>,
}

/// `r = Max(ReduceMax(Abs(x), axes = [−1], keepdims), tiny)` and
/// `DynamicQuantizeLinear(x / r)`, placed before `anchor`. `tiny` (the smallest normal
/// f32) keeps an all-zero row at zero instead of 0/0.
fn quantize_rows(g: &mut Graph, anchor: NodeId, x: ValueId, opset: i64) -> Result<Scaled, IrError> {
    let name = g.value(x).name().to_string();
    let abs = g.fresh_value(&format!("{name}_abs"));
    let peak = g.fresh_value(&format!("{name}_row_peak"));
    let row = g.fresh_value(&format!("{name}_row_scale"));
    let unit = g.fresh_value(&format!("{name}_row_normalized"));
    let tiny = g.add_initializer(
        &format!("{name}_row_floor"),
        Tensor::from_f32(vec![], &[f32::MIN_POSITIVE]),
    );
    let node = |op: &str| Node::new(op).with_name(format!("{name}_row_{op}"));
    g.add_node_at(anchor, node("Abs"), vec![Some(x)], vec![Some(abs)])?;
    let reduce = node("ReduceMax").with_attr(Attribute::int("keepdims", 1));
    if opset >= 18 {
        let axes = g.add_initializer(
            &format!("{name}_row_axes"),
            Tensor::from_i64(vec![1], &[-1]),
        );
        g.add_node_at(
            anchor,
            reduce,
            vec![Some(abs), Some(axes)],
            vec![Some(peak)],
        )?;
    } else {
        let reduce = reduce.with_attr(Attribute::ints("axes", vec![-1]));
        g.add_node_at(anchor, reduce, vec![Some(abs)], vec![Some(peak)])?;
    }
    g.add_node_at(
        anchor,
        node("Max"),
        vec![Some(peak), Some(tiny)],
        vec![Some(row)],
    )?;
    g.add_node_at(
        anchor,
        node("Div"),
        vec![Some(x), Some(row)],
        vec![Some(unit)],
    )?;
    let q = quantize_input(g, anchor, unit)?;
    Ok(Scaled { q, row: Some(row) })
}

/// Replaces node `n` by MatMulInteger → Cast → Mul(scales) [→ Mul(row scales)]
/// [→ Add(addend)].
fn rewrite(
    g: &mut Graph,
    n: NodeId,
    m: &Dense,
    x: Scaled,
    [wq, ws, wz]: [ValueId; 3],
    base: &str,
) -> Result<(), IrError> {
    let [xq, xs, xz] = x.q;
    let label = g.node(n).name().to_string();
    let label = if label.is_empty() {
        base.to_string()
    } else {
        label
    };
    g.remove_node(n);
    let acc = g.fresh_value(&format!("{base}_acc"));
    let accf = g.fresh_value(&format!("{base}_acc_f32"));
    let scale = g.fresh_value(&format!("{base}_out_scale"));
    let scaled = match m.addend {
        Some(_) => g.fresh_value(&format!("{base}_scaled")),
        None => m.y,
    };
    let dequantized = match x.row {
        Some(_) => g.fresh_value(&format!("{base}_unit_rows")),
        None => scaled,
    };
    let node = |op: &str, suffix: &str| Node::new(op).with_name(format!("{label}_{suffix}"));
    g.add_node(
        node("MatMulInteger", "MatMulInteger"),
        vec![Some(xq), Some(wq), Some(xz), Some(wz)],
        vec![Some(acc)],
    )?;
    g.add_node(
        node("Cast", "Cast").with_attr(Attribute::int("to", i64::from(DataType::Float.code()))),
        vec![Some(acc)],
        vec![Some(accf)],
    )?;
    g.add_node(
        node("Mul", "Scale"),
        vec![Some(xs), Some(ws)],
        vec![Some(scale)],
    )?;
    g.add_node(
        node("Mul", "Dequantize"),
        vec![Some(accf), Some(scale)],
        vec![Some(dequantized)],
    )?;
    if let Some(r) = x.row {
        g.add_node(
            node("Mul", "RowScale"),
            vec![Some(dequantized), Some(r)],
            vec![Some(scaled)],
        )?;
    }
    if let Some(c) = m.addend {
        g.add_node(
            node("Add", "Bias"),
            vec![Some(scaled), Some(c)],
            vec![Some(m.y)],
        )?;
    }
    Ok(())
}
