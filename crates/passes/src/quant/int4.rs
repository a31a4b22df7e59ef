//! `quantize-int4`: MatMul/Gemm weights in 4 bits, one scale per block of K rows per
//! output column.

use super::dense::{Dense, dense, kn_values};
use super::weights::eligible;
use crate::pass::{Pass, PassCx, PassError};
use crate::rule::{Costed, LossyRule, Patch, RuleCx, run_lossy};
use bytes::Bytes;
use whittle_ir::infer::Inference;
use whittle_ir::{Attribute, DataType, Graph, IrError, Node, NodeId, Tensor};

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
    pub block_size: usize,
    pub format: Int4Format,
    pub min_elements: u64,
}

impl Default for QuantizeInt4 {
    fn default() -> Self {
        QuantizeInt4 {
            block_size: 32,
            format: Int4Format::DequantizeLinear,
            min_elements: super::DEFAULT_MIN_ELEMENTS,
        }
    }
}

/// A weight quantized to 4 bits in blocks: codes q ∈ [−8, 7] in W's [K, N] order and one
/// scale per (block, column), block-major ([K/bs, N]).
#[derive(Clone, Debug, PartialEq)]
pub struct Int4 {
    pub q: Vec<i8>,
    pub scales: Vec<f32>,
    pub blocks: usize,
    /// ‖W − Ŵ‖ / ‖W‖.
    pub relative_error: f64,
}

/// Quantizes a row-major [k, n] weight in blocks of `bs` rows per column.
pub fn blockwise_int4(w: &[f32], k: usize, n: usize, bs: usize) -> Int4 {
    let blocks = k.div_ceil(bs);
    let mut scales = vec![1f32; blocks * n];
    for b in 0..blocks {
        for col in 0..n {
            let peak = (b * bs..((b + 1) * bs).min(k))
                .map(|r| w[r * n + col])
                .filter(|v| v.is_finite())
                .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
            if peak != 0.0 {
                scales[b * n + col] = peak / -8.0;
            }
        }
    }
    let (mut err, mut norm) = (0f64, 0f64);
    let q = w
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = scales[(i / n / bs) * n + i % n];
            let q = (v / s).round_ties_even().clamp(-8.0, 7.0);
            err += f64::from(v - q * s).powi(2);
            norm += f64::from(*v).powi(2);
            q as i8
        })
        .collect();
    Int4 {
        q,
        scales,
        blocks,
        relative_error: if norm > 0.0 { (err / norm).sqrt() } else { 0.0 },
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

impl Pass for QuantizeInt4 {
    fn name(&self) -> &'static str {
        "quantize-int4"
    }

    fn description(&self) -> &'static str {
        "MatMul/Gemm weights in 4 bits, blockwise (lossy; --quantize int4)"
    }

    fn changes_numerics(&self) -> bool {
        true
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        run_lossy(Pass::name(self), self, g, is_subgraph, cx)
    }
}

impl LossyRule for QuantizeInt4 {
    fn name(&self) -> &'static str {
        "int4"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Costed> {
        let opset_ok = match self.format {
            Int4Format::DequantizeLinear => cx.opset >= 21,
            Int4Format::MatMulNBits => true,
        };
        if cx.is_subgraph || !opset_ok || self.block_size < 16 || !self.block_size.is_power_of_two()
        {
            return None;
        }
        let m = matched(g, n, cx.facts, self.min_elements)?;
        let (values, k, cols) = kn_values(g, &m)?;
        if k % 2 != 0 {
            return None;
        }
        let q = blockwise_int4(&values, k, cols, self.block_size);
        let note = format!(
            "int4 {} [{k}, {cols}] in blocks of {}: relative weight error {:.2e}",
            g.value(m.w).name(),
            self.block_size,
            q.relative_error
        );
        let shape = Shape {
            k,
            n: cols,
            bs: self.block_size,
        };
        let format = self.format;
        let patch: Patch = Box::new(move |g: &mut Graph| match format {
            Int4Format::DequantizeLinear => dequantize_linear(g, n, &m, &q, shape),
            Int4Format::MatMulNBits => mat_mul_nbits(g, n, &m, &q, shape),
        });
        Some(Costed { patch, note })
    }
}

/// The weight's logical shape and the block size.
#[derive(Clone, Copy)]
struct Shape {
    k: usize,
    n: usize,
    bs: usize,
}

/// Two 4-bit values per byte, the first in the low nibble (ONNX INT4 and MatMulNBits).
fn pack(nibbles: impl Iterator<Item = u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in nibbles.enumerate() {
        if i % 2 == 0 {
            out.push(v & 0x0f);
        } else if let Some(last) = out.last_mut() {
            *last |= (v & 0x0f) << 4;
        }
    }
    out
}

/// `W_int4 [K, N] → DequantizeLinear(axis 0, block_size)`, read by the node (a Gemm
/// with transB reads it as [K, N] now, so transB is cleared).
fn dequantize_linear(
    g: &mut Graph,
    n: NodeId,
    m: &Dense,
    q: &Int4,
    s: Shape,
) -> Result<(), IrError> {
    let base = g.value(m.w).name().to_string();
    let raw = pack(q.q.iter().map(|v| *v as u8));
    let qv = g.add_initializer(
        &format!("{base}_int4"),
        Tensor::from_raw(
            DataType::Int4,
            vec![s.k as i64, s.n as i64],
            Bytes::from(raw),
        ),
    );
    let scale = g.add_initializer(
        &format!("{base}_scale"),
        Tensor::from_f32(vec![q.blocks as i64, s.n as i64], &q.scales),
    );
    let out = g.fresh_value(&format!("{base}_dequantized"));
    let dq = Node::new("DequantizeLinear")
        .with_name(format!("{base}_DequantizeLinear"))
        .with_attr(Attribute::int("axis", 0))
        .with_attr(Attribute::int("block_size", s.bs as i64));
    g.add_node_at(n, dq, vec![Some(qv), Some(scale)], vec![Some(out)])?;
    g.set_input(n, 1, Some(out));
    if m.transposed {
        g.node_mut(n).set_attr(Attribute::int("transB", 0));
    }
    g.remove_initializer(m.w);
    Ok(())
}

/// Replaces node `n` by `MatMulNBits(x, B, scales[, bias])`.
fn mat_mul_nbits(g: &mut Graph, n: NodeId, m: &Dense, q: &Int4, s: Shape) -> Result<(), IrError> {
    let node = g.node(n).clone();
    let (Some(x), Some(y)) = (node.input(0), node.output(0)) else {
        return Ok(());
    };
    let base = g.value(m.w).name().to_string();
    // Column by column, block by block, codes q + 8; a short last block is padded with 8
    // (zero).
    let blob = s.bs / 2;
    let codes = (0..s.n).flat_map(|col| {
        (0..q.blocks).flat_map(move |b| {
            (0..s.bs).map(move |i| {
                let r = b * s.bs + i;
                if r < s.k {
                    (q.q[r * s.n + col] + 8) as u8
                } else {
                    8
                }
            })
        })
    });
    let raw = pack(codes);
    let bv = g.add_initializer(
        &format!("{base}_q4"),
        Tensor::from_raw(
            DataType::Uint8,
            vec![s.n as i64, q.blocks as i64, blob as i64],
            Bytes::from(raw),
        ),
    );
    let by_column: Vec<f32> = (0..s.n)
        .flat_map(|col| (0..q.blocks).map(move |b| (b, col)))
        .map(|(b, col)| q.scales[b * s.n + col])
        .collect();
    let scale = g.add_initializer(
        &format!("{base}_scales"),
        Tensor::from_f32(vec![(s.n * q.blocks) as i64], &by_column),
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
    for (name, v) in [("K", s.k), ("N", s.n), ("bits", 4), ("block_size", s.bs)] {
        op = op.with_attr(Attribute::int(name, v as i64));
    }
    g.remove_node(n);
    g.add_node(op, inputs, vec![Some(y)])?;
    g.remove_initializer(m.w);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_map_their_largest_weight_to_minus_8() {
        // k = 4, n = 2, blocks of 2 rows: column 0 blocks (1, -2) and (0.5, 0.25),
        // column 1 blocks (4, 1) and (-1, 0).
        let w = [1.0, 4.0, -2.0, 1.0, 0.5, -1.0, 0.25, 0.0];
        let q = blockwise_int4(&w, 4, 2, 2);
        assert_eq!(q.blocks, 2);
        // scales block-major: [b0c0, b0c1, b1c0, b1c1] = peak / -8
        assert_eq!(q.scales, vec![0.25, -0.5, -0.0625, 0.125]);
        // 1/0.25 = 4; 4/-0.5 = -8; -2/0.25 = -8; 1/-0.5 = -2;
        // 0.5/-0.0625 = -8; -1/0.125 = -8; 0.25/-0.0625 = -4; 0/0.125 = 0
        assert_eq!(q.q, vec![4, -8, -8, -2, -8, -8, -4, 0]);
        assert!(q.relative_error < 1e-7);
    }

    #[test]
    fn opposite_peaks_clamp_at_7_and_zero_blocks_keep_scale_1() {
        let q = blockwise_int4(&[-8.0, 8.0, 0.0, 0.0], 4, 1, 2);
        assert_eq!(q.scales, vec![1.0, 1.0]);
        assert_eq!(q.q, vec![-8, 7, 0, 0]);
    }

    #[test]
    fn nibbles_pack_low_first() {
        assert_eq!(pack([1u8, 2, 15, 0, 7].into_iter()), vec![0x21, 0x0f, 0x07]);
        // negative int4 values keep their two's-complement low nibble
        assert_eq!(pack([(-8i8) as u8, (-1i8) as u8].into_iter()), vec![0xf8]);
    }
}
