//! `quantize-int8-static`: the QDQ listing it writes, the scale/zero-point/bias
//! arithmetic read back from the written tensors, that tract's outputs stay close, and
//! that a second run changes nothing.

mod lossy;

use std::collections::HashMap;
use whittle_compress::quant::qdq::{QuantizeStatic, observed_values, sites};
use whittle_compress::quant::ranges::{Method, Range, observe};
use whittle_eval::run_model;
use whittle_ir::infer::{InferOptions, infer};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_ir::{Model, Tensor};
use whittle_passes::PassCx;
use whittle_testkit::cosine;

const MODEL: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,4,8,8]
  output y: f32[2,10]
  init k1: f32[16,4,3,3] = random
  init b1: f32[16] = random
  init k2: f32[16,16,3,3] = random
  init fc: f32[16,10] = random
  init fb: f32[10] = random
  h = Conv(x, k1, b1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
  r = Relu(h)
  h2 = Conv(r, k2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
  p = GlobalAveragePool(h2)
  f = Flatten(p)
  y = Gemm(f, fc, fb)
}
";

fn sets(m: &Model, seeds: std::ops::Range<u64>) -> Vec<Vec<Tensor>> {
    whittle_eval::seeded_sets(&m.graph, seeds).unwrap()
}

/// Calibrates `src` on 8 random sets with `method` and quantizes it.
fn quantize(src: &str, method: Method, full_range: bool) -> (Model, Model, PassCx) {
    let original = parse_model(src).unwrap();
    let mut model = original.clone();
    let facts = infer(&mut model, &InferOptions::default()).unwrap();
    let found = sites(&model.graph, &facts, 0).unwrap();
    let values = observed_values(&found);
    let seen = observe(
        &whittle_eval::Runtime::Tract,
        &model,
        &values,
        &sets(&original, 0..8),
        method,
    )
    .unwrap();
    let ranges: HashMap<String, Range> = values
        .iter()
        .zip(seen)
        .map(|(v, r)| (model.graph.value(*v).name().to_string(), r))
        .collect();
    let pass = QuantizeStatic {
        ranges,
        per_channel: true,
        min_elements: 0,
        full_range,
    };
    let mut cx = PassCx::default();
    lossy::run(vec![Box::new(pass)], &mut model, &mut cx).unwrap();
    model.graph.verify(false).unwrap();
    (original, model, cx)
}

/// The initializer called `name`, or `name` with the pass's uniquifying suffix (`_wN`).
fn init(m: &Model, name: &str) -> Tensor {
    let g = &m.graph;
    let v = g
        .initializers()
        .iter()
        .find(|v| {
            let n = g.value(**v).name();
            n == name || n.strip_prefix(name).is_some_and(|t| t.starts_with("_w"))
        })
        .unwrap_or_else(|| panic!("no initializer {name}"));
    g.value(*v).initializer().cloned().unwrap()
}

fn floats(m: &Model, name: &str) -> Vec<f32> {
    init(m, name).to_f32_vec().unwrap()
}

fn ints(m: &Model, name: &str) -> Vec<i64> {
    init(m, name).to_i64_vec().unwrap()
}

#[test]
fn conv_relu_conv_gemm_becomes_qdq() {
    let (_, model, cx) = quantize(MODEL, Method::MinMax, false);
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 3, "two convs and the gemm:\n{text}");
    // Activations quantized: x, r (after the Relu, not h), h2 and f; y stays float.
    assert_eq!(text.matches("= QuantizeLinear(").count(), 4, "{text}");
    for v in ["x", "r", "h2", "f"] {
        assert!(
            text.contains(&format!("= QuantizeLinear({v}, {v}_scale")),
            "{v} quantized:\n{text}"
        );
    }
    assert!(
        !text.contains("QuantizeLinear(h,"),
        "h is read by the Relu only:\n{text}"
    );
    assert!(
        !text.contains("QuantizeLinear(y,"),
        "the graph output stays float:\n{text}"
    );
    // Weights int8 with per-channel axes, biases int32 on axis 0.
    assert_eq!(
        text.matches("= DequantizeLinear(").count(),
        4 + 3 + 2,
        "{text}"
    );
    for (name, ty) in [
        ("k1_int8", "i8[16,4,3,3]"),
        ("k2_int8", "i8[16,16,3,3]"),
        ("fc_int8", "i8[16,10]"),
        ("b1_int32", "i32[16]"),
        ("fb_int32", "i32[10]"),
        ("x_zero_point", "u8"),
    ] {
        let line = text
            .lines()
            .find(|l| l.trim().starts_with(&format!("init {name}")));
        assert!(
            line.is_some_and(|l| l.contains(&format!(": {ty}"))),
            "{name} should be {ty} in:\n{text}"
        );
    }
    for (w, axis) in [("k1", 0), ("k2", 0), ("fc", 1), ("b1", 0), ("fb", 0)] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("@{w}_DequantizeLinear")));
        assert!(
            line.is_some_and(|l| l.contains(&format!("{{axis={axis}}}"))),
            "{w} dequantized along axis {axis}:\n{text}"
        );
    }
    // Each op reads dequantized values only.
    for (op, reads) in [
        ("Conv", "(x_dequantized"),
        ("Relu", "(h)"),
        ("Conv", "(r_dequantized"),
        ("GlobalAveragePool", "(h2_dequantized"),
        ("Gemm", "(f_dequantized"),
    ] {
        assert!(
            text.contains(&format!("= {op}{reads}")),
            "{op} should read {reads}:\n{text}"
        );
    }
}

#[test]
fn written_tensors_follow_the_scale_arithmetic() {
    let (original, model, _) = quantize(MODEL, Method::MinMax, false);
    let sx = floats(&model, "x_scale")[0];
    let zx = ints(&model, "x_zero_point")[0];
    // Random inputs span both signs: the zero point sits inside [0, 255].
    assert!(zx > 0 && zx < 255, "{zx}");
    let k1 = floats(&original, "k1");
    let q = ints(&model, "k1_int8");
    let s = floats(&model, "k1_scale");
    assert_eq!(s.len(), 16, "one scale per output channel");
    for c in 0..16 {
        let slice = &k1[c * 36..(c + 1) * 36];
        let max = slice.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            (s[c] - max / 64.0).abs() <= f32::EPSILON * s[c],
            "channel {c}"
        );
        for (w, qv) in slice.iter().zip(&q[c * 36..(c + 1) * 36]) {
            assert!(qv.abs() <= 64, "reduced range");
            assert_eq!(*qv, (w / s[c]).round_ties_even() as i64, "weight {w}");
        }
    }
    // Bias: int32 on the product scale s_x · s_w[c], zero point 0.
    let b1 = floats(&original, "b1");
    let bq = ints(&model, "b1_int32");
    let bs = floats(&model, "b1_scale");
    for c in 0..16 {
        assert_eq!(bs[c], sx * s[c], "bias scale {c}");
        let want = (f64::from(b1[c]) / f64::from(bs[c])).round_ties_even() as i64;
        assert_eq!(bq[c], want, "bias {c}");
    }
    assert!(ints(&model, "b1_zero_point").iter().all(|z| *z == 0));
}

#[test]
fn outputs_stay_close_in_tract_for_every_range_method() {
    for method in [Method::MinMax, Method::Percentile(99.99), Method::Entropy] {
        for full_range in [false, true] {
            let (original, model, _) = quantize(MODEL, method, full_range);
            for inputs in sets(&original, 100..104) {
                let a = run_model(&original, "float", &inputs).unwrap();
                let b = run_model(&model, "int8-static", &inputs).unwrap();
                let c = cosine(&a[0].to_f32_vec().unwrap(), &b[0].to_f32_vec().unwrap());
                assert!(c > 0.995, "{method} full_range={full_range}: cosine {c}");
            }
        }
    }
}

#[test]
fn a_second_run_changes_nothing() {
    let (_, model, _) = quantize(MODEL, Method::MinMax, false);
    let before = print_model(&model, &PrintOptions::default());
    let mut again = model.clone();
    let pass = QuantizeStatic {
        ranges: HashMap::new(),
        per_channel: true,
        min_elements: 0,
        full_range: false,
    };
    let mut cx = PassCx::default();
    lossy::run(vec![Box::new(pass)], &mut again, &mut cx).unwrap();
    assert_eq!(cx.journal.log.len(), 0);
    assert_eq!(print_model(&again, &PrintOptions::default()), before);
}

#[test]
fn values_without_a_range_and_shared_weights_stay_float() {
    let src = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,16]
  output y: f32[2,8]
  output z: f32[2,8]
  init w: f32[16,8] = random
  y = MatMul(x, w)
  z = MatMul(x, w)
}
";
    let (_, model, cx) = quantize(src, Method::MinMax, false);
    assert_eq!(cx.journal.log.len(), 0, "w has two readers");
    assert!(!print_model(&model, &PrintOptions::default()).contains("QuantizeLinear"));
}
