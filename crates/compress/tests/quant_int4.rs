//! `quantize-int4`: the two forms it writes, their packing read back and dequantized in
//! the test, and tract's outputs through MatMulNBits.

mod lossy;

use whittle_compress::quant::{Int4Format, QuantizeInt4};
use whittle_eval::{InputSpec, random_inputs, run_model};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_ir::{DataType, Model, Tensor};
use whittle_passes::PassCx;
use whittle_testkit::cosine;

fn model(opset: i64) -> String {
    format!(
        "
ir_version 10
opset ai.onnx {opset}
opset com.microsoft 1
graph {{
  input x: f32[2,64]
  output y: f32[2,32]
  output g: f32[2,48]
  init w: f32[64,32] = random
  init b: f32[48,64] = random
  init c: f32[48] = random
  y = MatMul(x, w)
  g = Gemm(x, b, c) {{transB=1}}
}}
"
    )
}

fn quantize(src: &str, format: Int4Format) -> (Model, Model, PassCx) {
    quantize_bits(src, format, 4)
}

fn quantize_bits(src: &str, format: Int4Format, bits: usize) -> (Model, Model, PassCx) {
    let original = parse_model(src).unwrap();
    let mut m = original.clone();
    let mut cx = PassCx::default();
    lossy::run(
        vec![Box::new(QuantizeInt4 {
            format,
            bits,
            ..QuantizeInt4::default()
        })],
        &mut m,
        &mut cx,
    )
    .unwrap();
    m.graph.verify(false).unwrap();
    (original, m, cx)
}

fn init(m: &Model, prefix: &str) -> Tensor {
    let g = &m.graph;
    g.initializers()
        .iter()
        .map(|v| g.value(*v))
        .find(|v| v.name().starts_with(prefix))
        .and_then(|v| v.initializer().cloned())
        .unwrap_or_else(|| panic!("no initializer {prefix}*"))
}

/// Two nibbles per byte, low first; `signed` reads them as int4, else as uint4.
fn unpack(bytes: &[u8], count: usize, signed: bool) -> Vec<i32> {
    (0..count)
        .map(|i| {
            let nib = (bytes[i / 2] >> (4 * (i % 2))) & 0x0f;
            if signed && nib >= 8 {
                i32::from(nib) - 16
            } else {
                i32::from(nib)
            }
        })
        .collect()
}

#[test]
fn blocked_dequantize_linear_packs_int4_and_dequantizes_to_the_weight() {
    let (original, m, cx) = quantize(&model(21), Int4Format::DequantizeLinear);
    let text = print_model(&m, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 2, "{text}");
    assert_eq!(text.matches("{axis=0, block_size=32}").count(), 2, "{text}");
    assert!(
        text.contains("transB=0"),
        "the Gemm reads [K, N] now:\n{text}"
    );
    let q = init(&m, "w_int4");
    assert_eq!((q.dtype(), q.dims.clone()), (DataType::Int4, vec![64, 32]));
    let s = init(&m, "w_scale").to_f32_vec().unwrap();
    assert_eq!(s.len(), 2 * 32, "two blocks of 32 rows per column");
    let codes = unpack(&q.le_bytes().unwrap(), 64 * 32, true);
    let w = init(&original, "w").to_f32_vec().unwrap();
    for (i, (code, want)) in codes.iter().zip(&w).enumerate() {
        let scale = s[(i / 32 / 32) * 32 + i % 32];
        let back = *code as f32 * scale;
        // Rounding costs half a step; a weight of the peak's opposite sign beyond 7.5
        // steps is clamped to 7 and costs up to one step.
        let steps = if *code == 7 { 1.0 } else { 0.5 };
        assert!(
            (back - want).abs() <= scale.abs() * steps + 1e-6,
            "w[{i}]: {back} vs {want}"
        );
        assert!((-8..=7).contains(code));
    }
    // Each block's largest weight is exactly representable (it maps to -8).
    assert!(codes.contains(&-8));
}

#[test]
fn opset_below_21_keeps_the_weights_for_the_dequantize_form() {
    let (_, m, cx) = quantize(&model(17), Int4Format::DequantizeLinear);
    assert_eq!(cx.journal.log.len(), 0);
    assert!(print_model(&m, &PrintOptions::default()).contains("init w: f32[64,32]"));
}

#[test]
fn mat_mul_nbits_runs_in_tract_and_keeps_the_gemm_bias() {
    let (original, m, cx) = quantize(&model(17), Int4Format::MatMulNBits);
    let text = print_model(&m, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 2, "{text}");
    assert_eq!(
        text.matches("com.microsoft.MatMulNBits(").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("{K=64, N=32, bits=4, block_size=32}"),
        "{text}"
    );
    assert!(
        text.contains(", \"\", \"\", c)"),
        "the Gemm's C is the bias:\n{text}"
    );
    // B is [N, blocks, 16] codes q + 8; decode column 0 of w and compare.
    let b = init(&m, "w_q4");
    assert_eq!(b.dims, vec![32, 2, 16]);
    let codes = unpack(&b.le_bytes().unwrap(), 32 * 64, false);
    let scales = init(&m, "w_scales").to_f32_vec().unwrap();
    let w = init(&original, "w").to_f32_vec().unwrap();
    for k in 0..64 {
        let back = (codes[k] - 8) as f32 * scales[k / 32];
        let steps = if codes[k] == 15 { 1.0 } else { 0.5 };
        let err = (back - w[k * 32]).abs();
        assert!(err <= scales[k / 32].abs() * steps + 1e-6, "row {k}");
    }
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let a = run_model(&original, "f32", &inputs).unwrap();
    let q = run_model(&m, "int4", &inputs).unwrap();
    for (x, y) in a.iter().zip(&q) {
        assert_eq!(x.dims, y.dims);
        let c = cosine(&x.to_f32_vec().unwrap(), &y.to_f32_vec().unwrap());
        assert!(c > 0.99, "cosine {c}");
    }
}

/// 8 bits: one code per byte, q + 128, within half a step of the weight. tract 0.23 runs
/// MatMulNBits of 2 and 4 bits only: the outputs are checked in ONNX Runtime
/// (crates/cli/tests/runtime.rs).
#[test]
fn eight_bit_mat_mul_nbits_stores_a_byte_per_weight() {
    let (original, m, cx) = quantize_bits(&model(17), Int4Format::MatMulNBits, 8);
    let text = print_model(&m, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 2, "{text}");
    assert!(
        text.contains("{K=64, N=32, bits=8, block_size=32}"),
        "{text}"
    );
    let b = init(&m, "w_q8");
    assert_eq!(b.dims, vec![32, 2, 32]);
    let bytes = b.le_bytes().unwrap();
    let scales = init(&m, "w_scales").to_f32_vec().unwrap();
    let w = init(&original, "w").to_f32_vec().unwrap();
    for col in [0, 31] {
        for k in 0..64 {
            let q = i32::from(bytes[col * 64 + k]) - 128;
            let s = scales[col * 2 + k / 32];
            let err = ((q as f32) * s - w[k * 32 + col]).abs();
            assert!(err <= s.abs() * 0.5 + 1e-6, "column {col} row {k}");
        }
    }
}

#[test]
fn eight_bits_are_written_only_as_mat_mul_nbits() {
    let (_, m, cx) = quantize_bits(&model(21), Int4Format::DequantizeLinear, 8);
    assert_eq!(cx.journal.log.len(), 0);
    assert!(print_model(&m, &PrintOptions::default()).contains("init w: f32[64,32]"));
}

#[test]
fn gptq_with_calibration_grams_beats_round_to_nearest_on_the_data() {
    // Inputs whose channels move together (as a trained layer's do): GPTQ, given their
    // XᵀX, must give outputs closer to float than round-to-nearest on those inputs.
    use whittle_compress::quant::int4::Grams;
    let src = model(17);
    let mut original = parse_model(&src).unwrap();
    let facts = whittle_ir::infer::infer(&mut original, &Default::default()).unwrap();
    let base = QuantizeInt4 {
        format: Int4Format::MatMulNBits,
        ..QuantizeInt4::default()
    };
    // Calibration sets: x = a·mix + small noise, 8 sets of [2, 64].
    let mix: Vec<f32> = (0..3 * 64)
        .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
        .collect();
    let sets: Vec<Vec<Tensor>> = (0..8)
        .map(|s| {
            let x: Vec<f32> = (0..2 * 64)
                .map(|i| {
                    let (r, c) = (i / 64, i % 64);
                    let a = |j: usize| (((s * 2 + r) * 7 + j * 13) % 11) as f32 / 5.0 - 1.0;
                    (0..3).map(|j| a(j) * mix[j * 64 + c]).sum::<f32>()
                        + 0.01 * (((i * 31 + s) % 7) as f32 - 3.0)
                })
                .collect();
            vec![Tensor::from_f32(vec![2, 64], &x)]
        })
        .collect();
    let grams: Grams = base
        .gather_grams(&whittle_eval::Runtime::Tract, &original, &facts, &sets)
        .unwrap();
    assert_eq!(grams.len(), 2, "both dense layers have a Gram matrix");
    let run = |q: QuantizeInt4| {
        let mut m = original.clone();
        let mut cx = PassCx::default();
        lossy::run(vec![Box::new(q)], &mut m, &mut cx).unwrap();
        (m, cx)
    };
    let (rtn, _) = run(QuantizeInt4 {
        format: Int4Format::MatMulNBits,
        ..QuantizeInt4::default()
    });
    let (gptq, cx) = run(QuantizeInt4 {
        format: Int4Format::MatMulNBits,
        grams: std::sync::Arc::new(grams),
        ..QuantizeInt4::default()
    });
    let notes = &cx.journal.notes;
    assert!(notes.iter().any(|(_, n)| n.contains("GPTQ")), "{notes:?}");
    let err = |m: &Model| -> f64 {
        sets.iter()
            .map(|set| {
                let a = run_model(&original, "f32", set).unwrap();
                let b = run_model(m, "int4", set).unwrap();
                let (x, y) = (a[0].to_f32_vec().unwrap(), b[0].to_f32_vec().unwrap());
                x.iter()
                    .zip(&y)
                    .map(|(p, q)| f64::from(p - q).powi(2))
                    .sum::<f64>()
            })
            .sum()
    };
    let (e_rtn, e_gptq) = (err(&rtn), err(&gptq));
    assert!(
        e_gptq < 0.7 * e_rtn,
        "GPTQ {e_gptq} vs round-to-nearest {e_rtn}"
    );
}

#[test]
fn a_gram_matrix_of_inputs_that_never_varied_falls_back_to_round_to_nearest() {
    use whittle_compress::quant::int4::Grams;
    let original = parse_model(&model(17)).unwrap();
    let zero: Grams = [("w".to_string(), nalgebra::DMatrix::zeros(64, 64))].into();
    let mut m = original.clone();
    let mut cx = PassCx::default();
    lossy::run(
        vec![Box::new(QuantizeInt4 {
            format: Int4Format::MatMulNBits,
            grams: std::sync::Arc::new(zero),
            ..QuantizeInt4::default()
        })],
        &mut m,
        &mut cx,
    )
    .unwrap();
    assert_eq!(cx.journal.log.len(), 2, "both layers are quantized");
    let notes = &cx.journal.notes;
    assert!(notes.iter().all(|(_, n)| !n.contains("GPTQ")), "{notes:?}");
}
