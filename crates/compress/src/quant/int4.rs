//! `quantize-int4`: MatMul/Gemm weights in 4 bits, one scale per block of K rows per
//! output column.

use super::dense::{Dense, dense};
use super::error::QuantError;
use super::gptq;
use super::int4_pack::{self, Layout, sampled_error};
use super::weights::eligible;
use bytes::Bytes;
use nalgebra::DMatrix;
use std::collections::HashMap;
use std::sync::Arc;
use whittle_eval::probe;
use whittle_ir::deferred::{Deferred, Shared};
use whittle_ir::infer::Inference;
use whittle_ir::tensor::release_bytes;
use whittle_ir::{Attribute, DataType, Graph, IrError, Model, Node, NodeId, Tensor, ValueId};
use whittle_passes::pass::{Pass, PassCx, PassError};
use whittle_passes::rule::{Costed, LossyRule, Patch, RuleCx, run_lossy};

/// Contiguous pieces of a weight (block rows or columns) its reported error is measured
/// on: a big weight is read once more only in part; the encoding reads it all at export.
const SAMPLED_PIECES: usize = 8;

/// How the 4-bit weights are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int4Format {
    /// Standard ONNX: an INT4 weight behind a blocked `DequantizeLinear` (opset ≥ 21).
    /// ONNX Runtime runs it; tract 0.23 does not (no blocked quantization).
    DequantizeLinear,
    /// `com.microsoft.MatMulNBits` (bits = 4): ONNX Runtime and tract both run it, in
    /// 4-bit kernels.
    MatMulNBits,
}

impl std::str::FromStr for Int4Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dq" => Ok(Int4Format::DequantizeLinear),
            "matmulnbits" => Ok(Int4Format::MatMulNBits),
            _ => Err(format!("int4-format '{s}': expected dq or matmulnbits")),
        }
    }
}

/// `y = MatMul(x, W)` or `Gemm(x, W[, c])` (alpha = beta = 1, transA = 0, c 1-D) with a
/// constant 2-D f32 weight: W is split per output column into blocks of `block_size`
/// rows, each stored as 4-bit integers q ∈ [−8, 7] with one scale s = w*/−8 (w* the
/// block's weight of largest magnitude, so it maps to −8 exactly), and
///
/// - `DequantizeLinear`: `W ≈ DequantizeLinear(W_int4, scales, axis=0, block_size)`;
/// - `MatMulNBits`: `y = MatMulNBits(x, B, scales[, bias=c])` with B the codes q + 8
///   packed two per byte, column by column.
///
/// Guards: those of int8-weights (f32 initializer, one reader, not an input or output,
/// ≥ `min_elements`); K a multiple of 2; the DequantizeLinear form needs opset ≥ 21.
pub struct QuantizeInt4 {
    /// Bits per code: 4, or 8 (MatMulNBits only, rounded to nearest: codes in
    /// [−128, 127], scale w*/−128, stored q + 128 one per byte).
    pub bits: usize,
    pub block_size: usize,
    pub format: Int4Format,
    pub min_elements: u64,
    /// Gram matrices XᵀX of dense layers' inputs on calibration data, by weight name:
    /// those weights are rounded by GPTQ ([`super::gptq`]), the others to nearest.
    pub grams: Arc<Grams>,
}

/// XᵀX ([K, K]) of a dense layer's inputs, by the name of its weight.
pub type Grams = HashMap<String, DMatrix<f64>>;

impl Default for QuantizeInt4 {
    fn default() -> Self {
        QuantizeInt4 {
            bits: 4,
            block_size: 32,
            format: Int4Format::DequantizeLinear,
            min_elements: super::DEFAULT_MIN_ELEMENTS,
            grams: Arc::default(),
        }
    }
}

/// The dense layer at `n` if int4 takes it: the weight passes int8-weights' guards and a
/// Gemm's C is a constant f32 vector of N values (it becomes MatMulNBits' bias).
fn matched(g: &Graph, n: NodeId, facts: Option<&Inference>, min_elements: u64) -> Option<Dense> {
    let m = dense(g, n, facts)?;
    let t = g.value(m.w).initializer()?;
    if !eligible(g, m.w, min_elements) {
        return None;
    }
    let cols = if m.transposed { t.dims[0] } else { t.dims[1] };
    if let Some(c) = m.addend {
        let ok = g
            .constant(c)
            .is_some_and(|t| t.dtype() == DataType::Float && t.dims == [cols]);
        if !ok {
            return None;
        }
    }
    Some(m)
}

/// A dense layer int4 would take: its weight's name, the value it multiplies and K.
#[derive(Clone, Debug)]
pub struct Site {
    pub weight: String,
    pub x: ValueId,
    pub k: usize,
}

impl QuantizeInt4 {
    /// The dense layers of `g` this pass would quantize (for gathering their inputs'
    /// statistics on calibration data before it runs).
    pub fn sites(&self, g: &Graph, facts: &Inference) -> Vec<Site> {
        g.node_ids()
            .filter_map(|n| {
                let m = matched(g, n, Some(facts), self.min_elements)?;
                let dims = &g.value(m.w).initializer()?.dims;
                let k = usize::try_from(if m.transposed { dims[1] } else { dims[0] }).ok()?;
                Some(Site {
                    weight: g.value(m.w).name().to_string(),
                    x: m.x,
                    k,
                })
            })
            .collect()
    }
}

impl QuantizeInt4 {
    /// XᵀX of the inputs of every layer in [`QuantizeInt4::sites`], run on `sets`
    /// (calibration data), by weight name.
    pub fn gather_grams(
        &self,
        runtime: &whittle_eval::Runtime,
        model: &Model,
        facts: &Inference,
        sets: &[Vec<Tensor>],
    ) -> Result<Grams, QuantError> {
        let sites = self.sites(&model.graph, facts);
        let xs: Vec<ValueId> = sites.iter().map(|s| s.x).collect();
        let mut grams: Vec<DMatrix<f64>> = sites.iter().map(|s| DMatrix::zeros(s.k, s.k)).collect();
        probe(runtime, model, &xs, sets, "int4 (calibration)", |seen| {
            for ((site, gram), t) in sites.iter().zip(grams.iter_mut()).zip(seen) {
                let values = t.to_f32_vec().map_err(|e| {
                    QuantError::Data(format!("calibration input of '{}': {e}", site.weight))
                })?;
                if site.k == 0 || values.len() % site.k != 0 {
                    continue;
                }
                let rows = values.len() / site.k;
                let x = DMatrix::from_fn(rows, site.k, |r, c| f64::from(values[r * site.k + c]));
                *gram += x.transpose() * &x;
            }
            Ok::<(), QuantError>(())
        })?;
        Ok(sites.into_iter().map(|s| s.weight).zip(grams).collect())
    }
}

impl Pass for QuantizeInt4 {
    fn name(&self) -> &'static str {
        match self.bits {
            8 => "quantize-int8-nbits",
            _ => "quantize-int4",
        }
    }

    fn description(&self) -> &'static str {
        match self.bits {
            8 => {
                "MatMul/Gemm weights in 8 bits as MatMulNBits, blockwise (lossy; --quantize int8-weights --int8-form matmulnbits)"
            }
            _ => "MatMul/Gemm weights in 4 bits, blockwise (lossy; --quantize int4)",
        }
    }

    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Lossy
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        run_lossy(Pass::name(self), self, g, is_subgraph, cx)
    }
}

impl LossyRule for QuantizeInt4 {
    fn name(&self) -> &'static str {
        match self.bits {
            8 => "int8-nbits",
            _ => "int4",
        }
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Costed> {
        let opset_ok = match (self.format, self.bits) {
            (Int4Format::DequantizeLinear, 4) => cx.opset >= 21,
            (Int4Format::MatMulNBits, 4 | 8) => true,
            _ => false,
        };
        if cx.is_subgraph || !opset_ok || self.block_size < 16 || !self.block_size.is_power_of_two()
        {
            return None;
        }
        let m = matched(g, n, cx.facts, self.min_elements)?;
        let w = g.value(m.w).initializer()?;
        let (rows, cols) = (
            usize::try_from(w.dims[0]).ok()?,
            usize::try_from(w.dims[1]).ok()?,
        );
        let layout = Layout {
            k: if m.transposed { cols } else { rows },
            n: if m.transposed { rows } else { cols },
            bs: self.block_size,
            transposed: m.transposed,
            bits: self.bits,
        };
        if !layout.k.is_multiple_of(2) || w.dtype() != DataType::Float {
            return None;
        }
        let name = g.value(m.w).name().to_string();
        // GPTQ when calibration gave this layer a usable Gram matrix (one of inputs that
        // never varied cannot be factored: round to nearest then).
        let gptq = self
            .grams
            .get(&name)
            .filter(|_| self.bits == 4)
            .and_then(|gram| gptq_rounded(w, layout, gram));
        let (encoding, error) = match gptq {
            Some(found) => found,
            None => {
                // Read now only to estimate the error; the encoding is deferred to export.
                let src = w.le_bytes().ok()?;
                let (sums, sampled) = sampled_error(&src, layout, SAMPLED_PIECES);
                release_bytes(&src);
                let error = format!(
                    "relative weight error {:.2e}{}",
                    sums.relative(),
                    if sampled { " (sampled)" } else { "" }
                );
                (Encoding::Source(src), error)
            }
        };
        let note = format!(
            "int{} {name} [{}, {}] in blocks of {}: {error}",
            self.bits, layout.k, layout.n, self.block_size
        );
        let format = self.format;
        let patch: Patch = Box::new(move |g: &mut Graph| {
            let [codes, scales] = encoding.split(format, layout);
            match format {
                Int4Format::DequantizeLinear => dequantize_linear(g, n, &m, codes, scales, layout),
                Int4Format::MatMulNBits => mat_mul_nbits(g, n, &m, codes, scales, layout),
            }
        });
        Some(Costed { patch, note })
    }
}

/// Where a weight's int4 bytes come from when export writes them.
enum Encoding {
    /// Rounded to nearest from the (mapped) float weight, as it is written.
    Source(Bytes),
    /// Codes chosen beforehand (GPTQ), packed as they are written.
    Chosen(Arc<gptq::Rounded>),
}

impl Encoding {
    /// The codes and scales tensors of `format`, deferred: computed when read.
    fn split(self, format: Int4Format, l: Layout) -> [Deferred; 2] {
        let lens = match format {
            Int4Format::DequantizeLinear => [l.int4_len(), l.scales_len()],
            Int4Format::MatMulNBits => [l.nbits_len(), l.scales_len()],
        };
        Shared::split(lens, move || {
            Ok(match (&self, format) {
                (Encoding::Source(src), f) => {
                    let parts = match f {
                        Int4Format::DequantizeLinear => int4_pack::dequantize_linear(src, l).0,
                        Int4Format::MatMulNBits => int4_pack::mat_mul_nbits(src, l).0,
                    };
                    release_bytes(src);
                    parts
                }
                (Encoding::Chosen(r), Int4Format::DequantizeLinear) => {
                    int4_pack::dequantize_linear_from(&r.codes, &r.scales)
                }
                (Encoding::Chosen(r), Int4Format::MatMulNBits) => {
                    int4_pack::mat_mul_nbits_from(&r.codes, &r.scales, l)
                }
            })
        })
    }
}

/// GPTQ codes for the weight of `m` given its inputs' Gram matrix, and the report's
/// words: the output error on the calibration data against round-to-nearest's.
fn gptq_rounded(w: &Tensor, l: Layout, gram: &DMatrix<f64>) -> Option<(Encoding, String)> {
    let src = w.le_bytes().ok()?;
    let kn = int4_pack::kn_floats(&src, l);
    let r = gptq::round(&kn, l.k, l.n, l.bs, gram)?;
    let rtn = gptq::nearest_output_error(&kn, l.k, l.n, l.bs, gram);
    let words = format!(
        "GPTQ, output error on the calibration data {:.2e} (round-to-nearest {:.2e})",
        r.output.relative(),
        rtn.relative()
    );
    Some((Encoding::Chosen(Arc::new(r)), words))
}

/// `W_int4 [K, N] → DequantizeLinear(axis 0, block_size)`, read by the node (a Gemm
/// with transB reads it as [K, N] now, so transB is cleared).
fn dequantize_linear(
    g: &mut Graph,
    n: NodeId,
    m: &Dense,
    codes: Deferred,
    scales: Deferred,
    l: Layout,
) -> Result<(), IrError> {
    let base = g.value(m.w).name().to_string();
    let (k, cols, blocks) = (l.k as i64, l.n as i64, l.blocks() as i64);
    let qv = g.add_initializer(
        &format!("{base}_int4"),
        Tensor::from_deferred(DataType::Int4, vec![k, cols], codes),
    );
    let scale = g.add_initializer(
        &format!("{base}_scale"),
        Tensor::from_deferred(DataType::Float, vec![blocks, cols], scales),
    );
    let out = g.fresh_value(&format!("{base}_dequantized"));
    let dq = Node::new("DequantizeLinear")
        .with_name(format!("{base}_DequantizeLinear"))
        .with_attr(Attribute::int("axis", 0))
        .with_attr(Attribute::int("block_size", l.bs as i64));
    g.add_node_at(n, dq, vec![Some(qv), Some(scale)], vec![Some(out)])?;
    g.set_input(n, 1, Some(out));
    if m.transposed {
        g.node_mut(n).set_attr(Attribute::int("transB", 0));
    }
    g.remove_initializer(m.w);
    Ok(())
}

/// Replaces node `n` by `MatMulNBits(x, B, scales[, bias])`.
fn mat_mul_nbits(
    g: &mut Graph,
    n: NodeId,
    m: &Dense,
    codes: Deferred,
    scales: Deferred,
    l: Layout,
) -> Result<(), IrError> {
    let node = g.node(n).clone();
    let (Some(x), Some(y)) = (node.input(0), node.output(0)) else {
        return Ok(());
    };
    let base = g.value(m.w).name().to_string();
    let (cols, blocks) = (l.n as i64, l.blocks() as i64);
    let bv = g.add_initializer(
        &format!("{base}_q{}", l.bits),
        Tensor::from_deferred(
            DataType::Uint8,
            vec![cols, blocks, l.block_bytes() as i64],
            codes,
        ),
    );
    let scale = g.add_initializer(
        &format!("{base}_scales"),
        Tensor::from_deferred(DataType::Float, vec![cols * blocks], scales),
    );
    let mut inputs = vec![Some(x), Some(bv), Some(scale)];
    if let Some(c) = m.addend {
        inputs.extend([None, None, Some(c)]);
    }
    let label = if node.name().is_empty() {
        format!("{base}_MatMulNBits")
    } else {
        node.name().to_string()
    };
    let mut op = Node::new("MatMulNBits").with_name(label);
    op.domain = Some("com.microsoft".into());
    for (name, v) in [
        ("K", l.k),
        ("N", l.n),
        ("bits", l.bits),
        ("block_size", l.bs),
    ] {
        op = op.with_attr(Attribute::int(name, v as i64));
    }
    g.remove_node(n);
    g.add_node(op, inputs, vec![Some(y)])?;
    g.remove_initializer(m.w);
    Ok(())
}
