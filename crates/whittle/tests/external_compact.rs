//! Output data files hold only what the output references: tensors a lossy step
//! replaced leave no holes of zeros in the external data file written beside the output.

use whittle::{Optimizer, Settings};
use whittle_ir::text::parse_model;

/// Three 64x256 weights (64 KiB each) stored externally, one after the other.
const MODEL: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,64]
  output y: f32[2,256]
  output z: f32[2,256]
  output u: f32[2,256]
  init a: f32[64,256] = random
  init b: f32[64,256] = random
  init c: f32[64,256] = random
  y = MatMul(x, a)
  z = MatMul(x, b)
  u = MatMul(x, c)
}
";

#[test]
fn a_lossy_run_writes_only_the_external_tensors_it_still_references() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/m.onnx");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    let model = parse_model(MODEL).unwrap();
    let opts = whittle_onnx::ExportOptions {
        external_threshold: Some(1024),
        external_location: Some("m.onnx.data".into()),
        ..Default::default()
    };
    whittle_onnx::save_model(&model, &input, &opts).unwrap();
    let data_in = std::fs::metadata(input.with_extension("onnx.data"))
        .unwrap()
        .len();
    assert!(data_in >= 3 * 65536, "{data_in}");
    // int8 weights everywhere but b, which stays float and external (it sat in the
    // middle of the input's data file).
    let s: Settings =
        toml::from_str("quantize = \"int8-weights\"\nexclude = [\"node:<unnamed MatMul> -> z\"]\n")
            .unwrap();
    let optimizer = Optimizer::from_settings(&s).unwrap();
    let out = dir.path().join("out/m.onnx");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let report = optimizer.optimize_file(&input, &out).unwrap();
    assert_eq!(report.notes.len(), 2, "{:?}", report.notes);
    let written = whittle_onnx::read_model(&out).unwrap();
    let external: Vec<u64> = written
        .graph
        .initializers()
        .iter()
        .filter_map(|v| written.graph.value(*v).initializer())
        .filter(|t| t.is_external())
        .map(|t| t.stored_bytes())
        .collect();
    assert_eq!(external, [65536], "only b is external");
    let data_out = std::fs::metadata(out.with_extension("onnx.data"))
        .unwrap()
        .len();
    assert_eq!(data_out, 65536, "the data file holds b and nothing else");
    // What was written computes what the optimizer produced in memory.
    let mut expected = whittle_onnx::read_model(&input).unwrap();
    optimizer.optimize_model(&mut expected).unwrap();
    let inputs = whittle_eval::random_inputs(&expected.graph, &Default::default()).unwrap();
    let a = whittle_eval::run_model(&expected, "in memory", &inputs).unwrap();
    let b = whittle_eval::run_model(&written, "written", &inputs).unwrap();
    assert_eq!(a, b);
}
