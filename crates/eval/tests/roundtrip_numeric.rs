//! A round-tripped fixture computes exactly what the original computes (tract, random inputs).

use whittle_eval::{InputSpec, random_inputs, run_model_file};
use whittle_onnx::{ExportOptions, read_model, save_model};
use whittle_testkit::tract_fixtures;

#[test]
fn round_trip_outputs_are_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = InputSpec {
        dims: vec![("batch".into(), 2), ("seq".into(), 8)],
        int_high: 256, // the decoder fixtures have 256 tokens
        ..Default::default()
    };
    let mut ran = 0;
    for path in tract_fixtures() {
        let model = read_model(&path).unwrap();
        let inputs = random_inputs(&model.graph, &spec).unwrap();
        let out = tmp.path().join(path.file_name().unwrap());
        let opts = ExportOptions::default();
        save_model(&model, &out, &opts).unwrap();
        let a = run_model_file(&path, &inputs).unwrap_or_else(|e| panic!("{e}"));
        let b = run_model_file(&out, &inputs).unwrap();
        assert_eq!(a, b, "{}", path.display());
        ran += 1;
    }
    assert_eq!(ran, tract_fixtures().len());
}

#[test]
fn tract_still_refuses_the_fixtures_listed_as_unloadable() {
    use whittle_testkit::{TRACT_CANNOT_LOAD, fixture};
    let spec = InputSpec {
        dims: vec![("batch".into(), 2), ("seq".into(), 8)],
        int_high: 256,
        ..Default::default()
    };
    for (name, word) in TRACT_CANNOT_LOAD {
        let path = fixture(name);
        let model = read_model(&path).unwrap();
        let inputs = random_inputs(&model.graph, &spec).unwrap();
        let e = run_model_file(&path, &inputs).expect_err(name).to_string();
        assert!(e.contains(word), "{name}: tract fails otherwise now: {e}");
    }
}
