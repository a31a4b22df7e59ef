//! `quantize-int8-dynamic`: MatMul/Gemm (and, when listed, Conv) computed in integers
//! with run-time activation quantization — the listing, the weight codes, the per-row
//! activation scaling, and that tract's outputs stay close.

mod lossy;

use whittle_compress::quant::{ActScale, DynamicInt8};
use whittle_eval::{InputSpec, random_inputs, run_model};
use whittle_ir::Model;
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_passes::PassCx;
use whittle_testkit::cosine;

#[test]
fn int8_dynamic_computes_matmul_and_gemm_in_integers() {
    let src = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,3,64]
  input h: f32[4,64]
  output y: f32[2,3,32]
  output y2: f32[2,3,32]
  output g: f32[4,48]
  output small: f32[4,4]
  init w: f32[64,32] = random
  init w2: f32[64,32] = random
  init b: f32[48,64] = random
  init c: f32[48] = random
  init tiny: f32[64,4] = random
  y = MatMul(x, w)
  y2 = MatMul(x, w2)
  g = Gemm(h, b, c) {transB=1}
  small = MatMul(h, tiny)
}
";
    let original = parse_model(src).unwrap();
    let mut model = original.clone();
    let mut cx = PassCx::default();
    lossy::run(vec![Box::new(DynamicInt8::default())], &mut model, &mut cx).unwrap();
    model.graph.verify(false).unwrap();
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 3, "{text}");
    assert_eq!(text.matches("= MatMulInteger(").count(), 3, "{text}");
    // x feeds two MatMuls and is quantized once; h once for the Gemm.
    assert_eq!(text.matches("DynamicQuantizeLinear(").count(), 2, "{text}");
    assert_eq!(text.matches("= Add(").count(), 1, "the Gemm's bias: {text}");
    assert!(text.contains("init tiny: f32[64,4]"));
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let a = run_model(&original, "f32", &inputs).unwrap();
    let b = run_model(&model, "int8-dynamic", &inputs).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.dims, y.dims);
        let c = cosine(&x.to_f32_vec().unwrap(), &y.to_f32_vec().unwrap());
        assert!(c > 0.999, "cosine {c}");
    }
}

#[test]
fn int8_dynamic_keeps_weights_within_64_unless_full_range() {
    let src = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,64]
  output y: f32[2,32]
  init w: f32[64,32] = random
  y = MatMul(x, w)
}
";
    for (full_range, most) in [(false, 64), (true, 127)] {
        let mut model = parse_model(src).unwrap();
        lossy::run(
            vec![Box::new(DynamicInt8 {
                full_range,
                ..DynamicInt8::default()
            })],
            &mut model,
            &mut PassCx::default(),
        )
        .unwrap();
        let g = &model.graph;
        let q = g
            .initializers()
            .iter()
            .filter_map(|v| g.value(*v).initializer())
            .find(|t| t.dtype() == whittle_ir::DataType::Int8 && t.dims == [64, 32])
            .unwrap()
            .to_i64_vec()
            .unwrap();
        // Every column reaches the limit (its largest weight), none passes it.
        assert_eq!(
            q.iter().map(|v| v.abs()).max(),
            Some(most),
            "full_range={full_range}"
        );
    }
}

#[test]
fn int8_dynamic_takes_conv_as_conv_integer_when_listed() {
    let src = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[1,4,9,9]
  output y: f32[1,8,5,5]
  init k: f32[8,2,3,3] = random
  init b: f32[8] = random
  y = Conv(x, k, b) {kernel_shape=[3, 3], pads=[1, 0, 1, 2], strides=[2, 2], group=2}
}
";
    let original = parse_model(src).unwrap();
    let run = |ops: &[&str]| {
        let mut m = original.clone();
        let mut cx = PassCx::default();
        lossy::run(
            vec![Box::new(DynamicInt8 {
                min_elements: 0,
                ops: ops.iter().map(|s| s.to_string()).collect(),
                ..DynamicInt8::default()
            })],
            &mut m,
            &mut cx,
        )
        .unwrap();
        m.graph.verify(false).unwrap();
        (m, cx)
    };
    let (untouched, cx) = run(&["MatMul", "Gemm"]);
    assert_eq!(cx.journal.log.len(), 0, "Conv is taken only when listed");
    assert_eq!(untouched, original);
    let (m, cx) = run(&["Conv"]);
    let text = print_model(&m, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 1, "{text}");
    for want in [
        "= ConvInteger(x_quantized",
        "{kernel_shape=[3, 3], pads=[1, 0, 1, 2], strides=[2, 2], group=2}",
        "u8[8,2,3,3]",
        "f32[1,8,1,1]",
        "= Add(",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    // Codes are round(w / s) + 128 around the scalar zero point 128, within ±64.
    let g = &m.graph;
    let codes = g
        .initializers()
        .iter()
        .filter_map(|v| g.value(*v).initializer())
        .find(|t| t.dims == [8, 2, 3, 3])
        .unwrap()
        .to_i64_vec()
        .unwrap();
    assert!(codes.iter().all(|c| (64..=192).contains(c)), "{codes:?}");
    assert!(
        codes.contains(&64) || codes.contains(&192),
        "each channel's peak reaches ±64"
    );
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let a = run_model(&original, "f32", &inputs).unwrap();
    let b = run_model(&m, "conv-integer", &inputs).unwrap();
    assert_eq!(a[0].dims, b[0].dims);
    let c = cosine(&a[0].to_f32_vec().unwrap(), &b[0].to_f32_vec().unwrap());
    assert!(c > 0.999, "cosine {c}");
}

/// Two MatMuls reading `xs`, whose four rows (per batch) differ in size by 30 000x.
const SPREAD: &str = "
ir_version 8
opset ai.onnx OPSET
graph {
  input x: f32[2,4,64]
  output y: f32[2,4,32]
  output y2: f32[2,4,32]
  init spread: f32[1,4,1] = [1, 300, 0.01, 5]
  init w: f32[64,32] = random
  init w2: f32[64,32] = random
  xs = Mul(x, spread)
  y = MatMul(xs, w)
  y2 = MatMul(xs, w2)
}
";

fn dynamic(src: &Model, act_scale: ActScale) -> Model {
    let mut model = src.clone();
    lossy::run(
        vec![Box::new(DynamicInt8 {
            act_scale,
            ..DynamicInt8::default()
        })],
        &mut model,
        &mut PassCx::default(),
    )
    .unwrap();
    model.graph.verify(false).unwrap();
    model
}

/// The cosine of each 32-wide output row of `a` against the same row of `b`.
fn row_cosines(a: &[f32], b: &[f32]) -> Vec<f64> {
    a.chunks(32)
        .zip(b.chunks(32))
        .map(|(x, y)| cosine(x, y))
        .collect()
}

#[test]
fn row_scale_divides_each_row_by_its_peak_and_multiplies_back() {
    let original = parse_model(&SPREAD.replace("OPSET", "17")).unwrap();
    let model = dynamic(&original, ActScale::Row);
    let text = print_model(&model, &PrintOptions::default());
    for want in [
        "= Abs(xs) @xs_row_Abs",
        "= ReduceMax(xs_abs_w4) {keepdims=1, axes=[-1]}",
        "= Max(xs_row_peak_w5, xs_row_floor_w8)",
        "xs_row_normalized_w7: f32[2,4,64] = Div(xs, xs_row_scale_w6)",
        "= DynamicQuantizeLinear(xs_row_normalized_w7)",
        "init xs_row_floor_w8: f32[] = [1.1754944e-38]",
        "y: f32[2,4,32] = Mul(w_unit_rows_w15, xs_row_scale_w6) @w_RowScale",
        "y2: f32[2,4,32] = Mul(w2_unit_rows_w22, xs_row_scale_w6) @w2_RowScale",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    // Normalized once for both readers; each reader multiplies its rows back.
    assert_eq!(text.matches("= Abs(").count(), 1, "{text}");
    assert_eq!(
        text.matches("= DynamicQuantizeLinear(").count(),
        1,
        "{text}"
    );
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let want = run_model(&original, "f32", &inputs).unwrap();
    let rows = run_model(&model, "row", &inputs).unwrap();
    let tensor = run_model(&dynamic(&original, ActScale::Tensor), "tensor", &inputs).unwrap();
    for (i, w) in want.iter().enumerate() {
        let w = w.to_f32_vec().unwrap();
        let r = row_cosines(&w, &rows[i].to_f32_vec().unwrap());
        let t = row_cosines(&w, &tensor[i].to_f32_vec().unwrap());
        assert!(r.iter().all(|c| *c > 0.999), "row scales: {r:?}");
        // With one scale per tensor the 0.01 rows (2 and 6) fall below one step: they come
        // out all zero (cosine NaN) or far off.
        let close = |c: f64| c > 0.9;
        assert!(!close(t[2]) && !close(t[6]), "tensor scale: {t:?}");
    }
}

#[test]
fn row_scale_reads_axes_from_an_input_at_opset_18() {
    let original = parse_model(&SPREAD.replace("OPSET", "18")).unwrap();
    let model = dynamic(&original, ActScale::Row);
    let text = print_model(&model, &PrintOptions::default());
    for want in [
        "= ReduceMax(xs_abs_w4, xs_row_axes_w9) {keepdims=1}",
        "init xs_row_axes_w9: i64[1] = [-1]",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let want = run_model(&original, "f32", &inputs).unwrap();
    let got = run_model(&model, "row", &inputs).unwrap();
    for (w, g) in want.iter().zip(&got) {
        let c = cosine(&w.to_f32_vec().unwrap(), &g.to_f32_vec().unwrap());
        assert!(c > 0.999, "cosine {c}");
    }
}

#[test]
fn an_all_zero_row_stays_zero_instead_of_nan() {
    let original = parse_model(&SPREAD.replace("OPSET", "17")).unwrap();
    let model = dynamic(&original, ActScale::Row);
    let mut inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let mut x = inputs[0].to_f32_vec().unwrap();
    x[64..128].iter_mut().for_each(|v| *v = 0.0); // batch 0, row 1
    inputs[0] = whittle_ir::Tensor::from_f32(vec![2, 4, 64], &x);
    let got = run_model(&model, "row", &inputs).unwrap();
    for out in &got {
        let v = out.to_f32_vec().unwrap();
        assert!(v.iter().all(|v| v.is_finite()), "{v:?}");
        assert!(v[32..64].iter().all(|v| *v == 0.0), "{:?}", &v[32..64]);
    }
}
