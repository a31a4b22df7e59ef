//! Whole plans on small text models: the phases in order, lossy steps once, nothing
//! folded back, and exclusions honoured by lossy rules.

use whittle::{Optimizer, Quantize, Settings};

const MODEL: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,64]
  output y: f32[2,32]
  init w: f32[64,32] = random
  init b: f32[32] = random
  init one: f32[] = [1.0]
  s = Mul(x, one)
  m = MatMul(s, w)
  y = Add(m, b)
}
";

fn plan(toml: &str) -> Optimizer {
    let s: Settings = toml::from_str(toml).unwrap();
    Optimizer::from_settings(&s).unwrap()
}

#[test]
fn lossless_then_lossy_then_clean_up() {
    // -O2 removes x*1 and fuses MatMul+Add into Gemm; fp16-weights then stores the Gemm
    // weight as float16 behind a Cast, and no later pass folds it back to float32.
    let (text, report) = plan("quantize = \"fp16-weights\"\n")
        .optimize_text(MODEL)
        .unwrap();
    assert!(text.contains("= Gemm("), "{text}");
    assert!(
        text.contains("init w_fp16_w") && text.contains(": f16[64,32]"),
        "{text}"
    );
    assert!(!text.contains("= Mul(x, one)"), "{text}");
    let names: Vec<&str> = report.passes.iter().map(|p| p.name).collect();
    let q = names
        .iter()
        .position(|n| *n == "quantize-fp16-weights")
        .unwrap();
    let fuse = names.iter().position(|n| *n == "fuse").unwrap();
    assert!(fuse < q, "lossless before lossy: {names:?}");
    assert_eq!(report.passes[q].rewrites, 1, "{:?}", report.passes);
    let folds = report
        .passes
        .iter()
        .find(|p| p.name == "fold-constants")
        .unwrap();
    assert_eq!(
        folds.rewrites, 0,
        "nothing folded back: {:?}",
        report.passes
    );
}

#[test]
fn the_default_int8_form_keeps_compute_float_and_exclusions_hold() {
    let (text, _) = Optimizer::new()
        .quantize(Quantize::int8_weights())
        .optimize_text(MODEL)
        .unwrap();
    assert!(
        text.contains(": i8[64,32]") && text.contains("= Cast("),
        "{text}"
    );
    assert!(!text.contains("DequantizeLinear"), "{text}");
    let (text, report) = plan("quantize = \"int8-weights\"\nexclude = [\"op:Gemm\"]\n")
        .optimize_text(MODEL)
        .unwrap();
    assert!(text.contains("init w: f32[64,32]"), "{text}");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

#[test]
fn a_bad_text_model_is_an_error_not_a_panic() {
    let err = Optimizer::new().optimize_text("graph { y = }").unwrap_err();
    assert!(err.to_string().contains("text model"), "{err}");
}
