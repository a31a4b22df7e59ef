//! Opset upgrades: the ops whose encoding changed are converted, the rest left alone,
//! outputs unchanged in tract, and what cannot be converted is refused naming the node.

use whittle_eval::{InputSpec, random_inputs, run_model};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_passes::opset::{UpgradeError, upgrade};

const OLD: &str = "
ir_version 7
opset ai.onnx 13
graph {
  input x: f32[2,6,4]
  output m: f32[2,1,4]
  output all: f32[]
  output a: f32[2,3,4]
  output b: f32[2,3,4]
  output r: f32[2,6,4]
  m = ReduceMean(x) {axes=[1]}
  all = ReduceMax(x) {keepdims=0}
  a, b = Split(x) {axis=1}
  r = Relu(x)
}
";

#[test]
fn changed_ops_are_converted_and_outputs_stay_the_same() {
    let original = parse_model(OLD).unwrap();
    let mut model = original.clone();
    assert_eq!(upgrade(&mut model, 21), Ok(2));
    model.graph.verify(false).unwrap();
    let text = print_model(&model, &PrintOptions::default());
    for want in [
        "ir_version 10",
        "opset ai.onnx 21",
        "init m_axes_w1: i64[1] = [1]",
        "m: f32[2,1,4] = ReduceMean(x, m_axes_w1)",
        "= ReduceMax(x) {keepdims=0}",
        "= Split(x) {axis=1, num_outputs=2}",
        "= Relu(x)",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let before = run_model(&original, "opset 13", &inputs).unwrap();
    let after = run_model(&model, "opset 21", &inputs).unwrap();
    assert_eq!(before, after);
    // Already there: nothing to do.
    assert_eq!(upgrade(&mut model, 21), Ok(0));
}

#[test]
fn what_cannot_be_converted_is_refused_and_the_model_left_alone() {
    let src = "
ir_version 8
opset ai.onnx 18
graph {
  input x: f32[1,4,3,3]
  output y: f32[1,4,3,3]
  init s: f32[2] = [1, 1]
  init b: f32[2] = [0, 0]
  y = GroupNormalization(x, s, b) {num_groups=2} @gn
}
";
    let original = parse_model(src).unwrap();
    let mut model = original.clone();
    let err = upgrade(&mut model, 21).unwrap_err();
    assert!(matches!(err, UpgradeError::Node { at: 21, .. }), "{err:?}");
    assert!(
        err.to_string().contains("GroupNormalization node 'gn'"),
        "{err}"
    );
    assert_eq!(model, original);
    // Below 18 GroupNormalization does not exist and there is nothing in the way.
    let mut old = parse_model(&OLD.replace("opset ai.onnx 13", "opset ai.onnx 11")).unwrap();
    assert!(matches!(
        upgrade(&mut old, 21),
        Err(UpgradeError::Range { from: 11, .. })
    ));
}
