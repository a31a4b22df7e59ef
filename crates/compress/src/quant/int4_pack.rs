//! The blockwise encodings of one weight in 4 or 8 bits, computed from its stored bytes:
//! what `quantize-int4` defers until export writes them (so a 7B model is quantized one
//! weight at a time, straight from the memory-mapped input).
//!
//! W is read in tiles of [`TILE`] columns (one cache line of each row), tiles in
//! parallel; each column is cut into blocks of `bs` rows, each block stored as codes
//! q ∈ [−h, h − 1] (h = 2^(bits−1): 8 for 4 bits, 128 for 8) and one scale s = w*/−h (w*
//! the block's finite value of largest magnitude, so it maps to −h exactly; 1 for an
//! all-zero block).

use bytes::Bytes;
use rayon::prelude::*;

/// Columns quantized together: 16 f32 are one 64-byte cache line of a row.
const TILE: usize = 16;

/// Where W's values are and how they are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Rows (the reduction axis) and columns (outputs).
    pub k: usize,
    pub n: usize,
    /// Rows per scale.
    pub bs: usize,
    /// Stored [N, K] (Gemm transB = 1) rather than [K, N].
    pub transposed: bool,
    /// Bits per code: 4 or 8.
    pub bits: usize,
}

impl Layout {
    /// Blocks per column (the last one may be short).
    pub fn blocks(&self) -> usize {
        self.k.div_ceil(self.bs)
    }

    /// W[r, c] from the little-endian f32 bytes `src`.
    fn at(&self, src: &[u8], r: usize, c: usize) -> f32 {
        let i = if self.transposed {
            c * self.k + r
        } else {
            r * self.n + c
        };
        let b = &src[i * 4..i * 4 + 4];
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Bytes of one block's codes in MatMulNBits' B (bs/2 for 4 bits, bs for 8).
    pub fn block_bytes(&self) -> usize {
        self.bs * self.bits / 8
    }

    /// Bytes of MatMulNBits' B: [N, blocks, block_bytes].
    pub fn nbits_len(&self) -> u64 {
        (self.n * self.blocks() * self.block_bytes()) as u64
    }

    /// h = 2^(bits−1): codes lie in [−h, h − 1] and are stored as q + h.
    pub fn half(&self) -> i16 {
        1 << (self.bits - 1)
    }

    /// Bytes of the scales, one f32 per (block, column).
    pub fn scales_len(&self) -> u64 {
        (self.n * self.blocks() * 4) as u64
    }

    /// Bytes of an INT4 [K, N] tensor.
    pub fn int4_len(&self) -> u64 {
        (self.k * self.n).div_ceil(2) as u64
    }
}

/// Squared error and squared norm of what was quantized (for ‖W − Ŵ‖ / ‖W‖).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorSums {
    pub err: f64,
    pub norm: f64,
}

impl ErrorSums {
    fn add(self, o: ErrorSums) -> ErrorSums {
        ErrorSums {
            err: self.err + o.err,
            norm: self.norm + o.norm,
        }
    }

    /// ‖W − Ŵ‖ / ‖W‖ (0 for an all-zero weight).
    pub fn relative(&self) -> f64 {
        if self.norm > 0.0 {
            (self.err / self.norm).sqrt()
        } else {
            0.0
        }
    }
}

/// `x.round_ties_even()` for |x| < 2²² (and ±∞, NaN), without a libm call: adding
/// 1.5·2²³ leaves no fraction bits, so the FPU rounds to nearest even.
fn round_small(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0;
    (x + SHIFT) - SHIFT
}

/// Quantizes one block to codes in [−half, half − 1]: writes its codes, returns its
/// scale, adds to `sums`.
pub fn block(vals: &[f32], codes: &mut [i8], sums: &mut ErrorSums, half: i16) -> f32 {
    let h = f32::from(half);
    let peak = vals
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let s = if peak != 0.0 { peak / -h } else { 1.0 };
    for (v, q) in vals.iter().zip(codes.iter_mut()) {
        let c = round_small(v / s).clamp(-h, h - 1.0);
        sums.err += f64::from(v - c * s).powi(2);
        sums.norm += f64::from(*v).powi(2);
        *q = c as i8;
    }
    s
}

/// One tile of columns quantized: per column, `blocks` scales and K codes.
struct Tile {
    scales: Vec<f32>,
    codes: Vec<i8>,
    sums: ErrorSums,
}

/// Columns `c0..c0 + width` of W, column-major (K values each).
fn gather(src: &[u8], l: Layout, c0: usize, width: usize) -> Vec<f32> {
    let float = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if l.transposed {
        let cols = &src[c0 * l.k * 4..(c0 + width) * l.k * 4];
        return cols.chunks_exact(4).map(float).collect();
    }
    let mut column = vec![0f32; l.k * width];
    for r in 0..l.k {
        let row = &src[(r * l.n + c0) * 4..(r * l.n + c0 + width) * 4];
        for (j, b) in row.chunks_exact(4).enumerate() {
            column[j * l.k + r] = float(b);
        }
    }
    column
}

/// Quantizes columns `c0..c0 + width` of W.
fn tile(src: &[u8], l: Layout, c0: usize, width: usize) -> Tile {
    let column = gather(src, l, c0, width);
    let blocks = l.blocks();
    let mut t = Tile {
        scales: vec![0f32; width * blocks],
        codes: vec![0i8; width * l.k],
        sums: ErrorSums::default(),
    };
    for j in 0..width {
        for b in 0..blocks {
            let rows = b * l.bs..((b + 1) * l.bs).min(l.k);
            let at = j * l.k;
            let scale = block(
                &column[at + rows.start..at + rows.end],
                &mut t.codes[at + rows.start..at + rows.end],
                &mut t.sums,
                l.half(),
            );
            t.scales[j * blocks + b] = scale;
        }
    }
    t
}

/// Two 4-bit values per byte, the first in the low nibble (ONNX INT4 and MatMulNBits).
pub fn pack(nibbles: impl Iterator<Item = u8>) -> Vec<u8> {
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

fn f32_bytes(v: &[f32]) -> Bytes {
    Bytes::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

/// One column's codes (K of them) as MatMulNBits stores them: q + h, two per byte low
/// nibble first for 4 bits, one per byte for 8; a short last block padded with h (zero).
fn pack_column(codes: impl Fn(usize) -> Option<i8>, out: &mut [u8], l: Layout) {
    let h = l.half();
    let stored = |r: usize| codes(r).map_or(h, |q| i16::from(q) + h) as u8;
    match l.bits {
        8 => out.iter_mut().enumerate().for_each(|(r, b)| *b = stored(r)),
        _ => out
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = stored(2 * i) | (stored(2 * i + 1) << 4)),
    }
}

/// MatMulNBits' B ([N, blocks, block bytes]: column by column, block by block, see
/// [`pack_column`]) and its scales ([N · blocks], column-major); tiles in parallel.
pub fn mat_mul_nbits(src: &[u8], l: Layout) -> ([Bytes; 2], ErrorSums) {
    let blocks = l.blocks();
    let per_col = blocks * l.block_bytes();
    let mut b = vec![0u8; l.n * per_col];
    let mut scales = vec![0f32; l.n * blocks];
    let sums = b
        .par_chunks_mut(TILE * per_col)
        .zip(scales.par_chunks_mut(TILE * blocks))
        .enumerate()
        .map(|(i, (b, s))| {
            let width = s.len() / blocks;
            let t = tile(src, l, i * TILE, width);
            s.copy_from_slice(&t.scales);
            for j in 0..width {
                let codes = &t.codes[j * l.k..(j + 1) * l.k];
                pack_column(
                    |r| codes.get(r).copied(),
                    &mut b[j * per_col..(j + 1) * per_col],
                    l,
                );
            }
            t.sums
        })
        .reduce(ErrorSums::default, ErrorSums::add);
    ([Bytes::from(b), f32_bytes(&scales)], sums)
}

/// An INT4 [K, N] tensor (row-major codes, packed low nibble first) and its scales
/// [blocks, N] for a blocked DequantizeLinear (axis 0).
pub fn dequantize_linear(src: &[u8], l: Layout) -> ([Bytes; 2], ErrorSums) {
    let blocks = l.blocks();
    let tiles: Vec<Tile> = (0..l.n.div_ceil(TILE))
        .into_par_iter()
        .map(|i| tile(src, l, i * TILE, TILE.min(l.n - i * TILE)))
        .collect();
    let code = |r: usize, c: usize| tiles[c / TILE].codes[(c % TILE) * l.k + r];
    let q = pack((0..l.k * l.n).map(|i| code(i / l.n, i % l.n) as u8));
    let scales: Vec<f32> = (0..blocks * l.n)
        .map(|i| {
            let (b, c) = (i / l.n, i % l.n);
            tiles[c / TILE].scales[(c % TILE) * blocks + b]
        })
        .collect();
    let sums = tiles
        .iter()
        .fold(ErrorSums::default(), |a, t| a.add(t.sums));
    ([Bytes::from(q), f32_bytes(&scales)], sums)
}

/// W as row-major [K, N] floats, whichever way it is stored.
pub fn kn_floats(src: &[u8], l: Layout) -> Vec<f32> {
    (0..l.k * l.n)
        .map(|i| l.at(src, i / l.n, i % l.n))
        .collect()
}

/// Codes already chosen (row-major [K, N]) and their scales ([blocks, N]) in
/// MatMulNBits' layout: B as [`mat_mul_nbits`] writes it and scales column-major.
pub fn mat_mul_nbits_from(codes: &[i8], scales: &[f32], l: Layout) -> [Bytes; 2] {
    let blocks = l.blocks();
    let per_col = blocks * l.block_bytes();
    let mut b = vec![0u8; l.n * per_col];
    for c in 0..l.n {
        let column = |r: usize| (r < l.k).then(|| codes[r * l.n + c]);
        pack_column(column, &mut b[c * per_col..(c + 1) * per_col], l);
    }
    let by_column: Vec<f32> = (0..l.n * blocks)
        .map(|i| scales[(i % blocks) * l.n + i / blocks])
        .collect();
    [Bytes::from(b), f32_bytes(&by_column)]
}

/// Codes already chosen (row-major [K, N]) and their scales ([blocks, N]) as an INT4
/// [K, N] tensor and the scales of a blocked DequantizeLinear.
pub fn dequantize_linear_from(codes: &[i8], scales: &[f32]) -> [Bytes; 2] {
    [
        Bytes::from(pack(codes.iter().map(|q| *q as u8))),
        f32_bytes(scales),
    ]
}

/// The error of quantizing W, measured on at most `units` evenly spaced pieces that are
/// contiguous in the file (block rows of a [K, N] weight, columns of an [N, K] one), so
/// that estimating it reads a small part of a big weight. Returns the sums and whether
/// it sampled (false: every piece was measured, the error is exact).
pub fn sampled_error(src: &[u8], l: Layout, units: usize) -> (ErrorSums, bool) {
    let total = if l.transposed { l.n } else { l.blocks() };
    let picked: Vec<usize> = if total <= units {
        (0..total).collect()
    } else {
        (0..units).map(|i| i * total / units).collect()
    };
    let mut sums = ErrorSums::default();
    let mut vals = Vec::with_capacity(l.bs);
    let mut codes = vec![0i8; l.bs];
    for u in &picked {
        // A column's blocks, or a block row's columns.
        let cuts: Vec<(usize, usize)> = if l.transposed {
            (0..l.blocks()).map(|b| (b, *u)).collect()
        } else {
            (0..l.n).map(|c| (*u, c)).collect()
        };
        for (b, c) in cuts {
            vals.clear();
            vals.extend((b * l.bs..((b + 1) * l.bs).min(l.k)).map(|r| l.at(src, r, c)));
            block(&vals, &mut codes[..vals.len()], &mut sums, l.half());
        }
    }
    (sums, picked.len() < total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn floats(b: &Bytes) -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn blocks_map_their_largest_weight_to_minus_8() {
        let mut sums = ErrorSums::default();
        let mut q = [0i8; 2];
        assert_eq!(block(&[1.0, -2.0], &mut q, &mut sums, 8), 0.25);
        assert_eq!(q, [4, -8]);
        assert_eq!(block(&[4.0, 1.0], &mut q, &mut sums, 8), -0.5);
        assert_eq!(q, [-8, -2]);
        assert!(sums.relative() < 1e-7);
    }

    #[test]
    fn opposite_peaks_clamp_at_7_and_zero_blocks_keep_scale_1() {
        let mut sums = ErrorSums::default();
        let mut q = [0i8; 2];
        assert_eq!(block(&[-8.0, 8.0], &mut q, &mut sums, 8), 1.0);
        assert_eq!(q, [-8, 7]);
        assert_eq!(block(&[0.0, 0.0], &mut q, &mut sums, 8), 1.0);
        assert_eq!(q, [0, 0]);
        assert_eq!(block(&[-128.0, 128.0], &mut q, &mut sums, 128), 1.0);
        assert_eq!(q, [-128, 127]);
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        for x in [
            -8.5f32, -7.5, -0.5, 0.5, 1.5, 2.5, 6.49, 6.51, 7.5, -0.0, 3.0,
        ] {
            assert_eq!(round_small(x), x.round_ties_even(), "{x}");
        }
        assert_eq!(round_small(f32::INFINITY), f32::INFINITY);
        assert!(round_small(f32::NAN).is_nan());
    }

    #[test]
    fn nibbles_pack_low_first() {
        assert_eq!(pack([1u8, 2, 15, 0, 7].into_iter()), vec![0x21, 0x0f, 0x07]);
        // negative int4 values keep their two's-complement low nibble
        assert_eq!(pack([(-8i8) as u8, (-1i8) as u8].into_iter()), vec![0xf8]);
    }

    /// k = 4, n = 2, blocks of 2 rows: column 0 blocks (1, -2) and (0.5, 0.25), column 1
    /// blocks (4, 1) and (-1, 0); stored [K, N] and [N, K] the encodings agree.
    #[test]
    fn both_storage_orders_give_the_same_encodings() {
        let kn = [1.0, 4.0, -2.0, 1.0, 0.5, -1.0, 0.25, 0.0];
        let nk = [1.0, -2.0, 0.5, 0.25, 4.0, 1.0, -1.0, 0.0];
        let l = Layout {
            k: 4,
            n: 2,
            bs: 2,
            transposed: false,
            bits: 4,
        };
        let t = Layout {
            transposed: true,
            ..l
        };
        let ([b, s], _) = mat_mul_nbits(&le(&kn), l);
        assert_eq!(mat_mul_nbits(&le(&nk), t).0, [b.clone(), s.clone()]);
        // Column-major scales: c0 (0.25, -0.0625), c1 (-0.5, 0.125).
        assert_eq!(floats(&s), [0.25, -0.0625, -0.5, 0.125]);
        // Codes + 8: c0 (12, 0 | 0, 4), c1 (0, 6 | 0, 8).
        assert_eq!(b.as_ref(), [0x0c, 0x40, 0x60, 0x80]);
        let ([q, s2], sums) = dequantize_linear(&le(&kn), l);
        assert_eq!(dequantize_linear(&le(&nk), t).0, [q.clone(), s2.clone()]);
        assert_eq!(floats(&s2), [0.25, -0.5, -0.0625, 0.125]);
        // Row-major codes 4, -8 | -8, -2 | -8, -8 | -4, 0.
        assert_eq!(q.as_ref(), [0x84, 0xe8, 0x88, 0x0c]);
        assert!(sums.relative() < 1e-7);
    }

    #[test]
    fn chosen_codes_pack_as_the_rounded_ones_do() {
        // The codes and block-major scales of `both_storage_orders_give_the_same_encodings`.
        let kn = [1.0, 4.0, -2.0, 1.0, 0.5, -1.0, 0.25, 0.0];
        let l = Layout {
            k: 4,
            n: 2,
            bs: 2,
            transposed: false,
            bits: 4,
        };
        let codes = [4, -8, -8, -2, -8, -8, -4, 0];
        let scales = [0.25, -0.5, -0.0625, 0.125];
        assert_eq!(
            mat_mul_nbits_from(&codes, &scales, l),
            mat_mul_nbits(&le(&kn), l).0
        );
        assert_eq!(
            dequantize_linear_from(&codes, &scales),
            dequantize_linear(&le(&kn), l).0
        );
    }

    #[test]
    fn a_short_last_block_is_padded_with_zero_codes() {
        let l = Layout {
            k: 3,
            n: 1,
            bs: 2,
            transposed: false,
            bits: 4,
        };
        let ([b, _], _) = mat_mul_nbits(&le(&[1.0, 2.0, 3.0]), l);
        assert_eq!(l.nbits_len(), 2);
        // Block 0: (1, 2) / -0.25 -> -4, -8 -> +8: 4, 0; block 1: 3 / -0.375 -> -8 -> 0, pad 8.
        assert_eq!(b.as_ref(), [0x04, 0x80]);
    }

    /// 8 bits: one code per byte, stored q + 128; the peak maps to −128, a short last
    /// block is padded with 128 (zero); both storage orders agree.
    #[test]
    fn eight_bit_codes_take_a_byte_each() {
        let kn = [1.0, 4.0, -2.0, 1.0, 0.5, -1.0];
        let nk = [1.0, -2.0, 0.5, 4.0, 1.0, -1.0];
        let l = Layout {
            k: 3,
            n: 2,
            bs: 2,
            transposed: false,
            bits: 8,
        };
        assert_eq!((l.block_bytes(), l.nbits_len()), (2, 8));
        let ([b, s], sums) = mat_mul_nbits(&le(&kn), l);
        let t = Layout {
            transposed: true,
            ..l
        };
        assert_eq!(mat_mul_nbits(&le(&nk), t).0, [b.clone(), s.clone()]);
        // c0: (1, -2) / (-2/-128) -> 64, -128; 0.5 / (0.5/-128) -> -128; c1: (4, 1) /
        // (4/-128) -> -128, -32; -1 / (-1/-128) -> -128 (stored +128).
        assert_eq!(b.as_ref(), [192, 0, 0, 128, 0, 96, 0, 128]);
        assert_eq!(
            floats(&s),
            [2.0 / 128.0, -0.5 / 128.0, -4.0 / 128.0, 1.0 / 128.0]
        );
        assert!(sums.relative() < 1e-7);
        let codes = [64, -128, -128, -32, -128, -128];
        let scales = [2.0 / 128.0, -4.0 / 128.0, -0.5 / 128.0, 1.0 / 128.0];
        assert_eq!(mat_mul_nbits_from(&codes, &scales, l), [b, s]);
    }

    #[test]
    fn the_sampled_error_is_exact_when_every_piece_fits() {
        let w: Vec<f32> = (0..64 * 8)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        for transposed in [false, true] {
            let l = Layout {
                k: 64,
                n: 8,
                bs: 16,
                transposed,
                bits: 4,
            };
            let (_, full) = mat_mul_nbits(&le(&w), l);
            let (exact, sampled) = sampled_error(&le(&w), l, 8);
            assert!(!sampled);
            assert!((exact.relative() - full.relative()).abs() < 1e-12);
            let (some, sampled) = sampled_error(&le(&w), l, 2);
            assert!(sampled && some.norm < full.norm);
        }
    }
}
