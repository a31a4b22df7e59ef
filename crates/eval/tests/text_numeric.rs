//! The text form is lossless for computation: every fixture, printed in full (with its
//! inferred types) and parsed back, computes exactly what the file computes.

use whittle_eval::{InputSpec, random_inputs, run_model};
use whittle_ir::infer::{InferOptions, infer};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_onnx::read_model;
use whittle_testkit::tract_fixtures;

#[test]
fn printed_fixtures_parse_back_and_compute_the_same() {
    let spec = InputSpec {
        dims: vec![("batch".into(), 2), ("seq".into(), 8)],
        int_high: 256, // the decoder fixtures have 256 tokens
        ..Default::default()
    };
    let full = PrintOptions {
        max_values: None,
        color: false,
    };
    let mut ran = 0;
    for path in tract_fixtures() {
        let label = path.display().to_string();
        let mut model = read_model(&path).unwrap();
        let inf = infer(&mut model, &InferOptions::default()).unwrap();
        assert!(inf.warnings.is_empty(), "{label}: {:?}", inf.warnings);
        let text = print_model(&model, &full);
        let parsed = parse_model(&text).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            print_model(&parsed, &full),
            text,
            "{label}: print is not a fixed point"
        );
        let inputs = random_inputs(&model.graph, &spec).unwrap();
        let a = run_model(&model, &label, &inputs).unwrap_or_else(|e| panic!("{e}"));
        let b = run_model(&parsed, &label, &inputs).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b, "{label}");
        ran += 1;
    }
    assert_eq!(ran, tract_fixtures().len());
}
