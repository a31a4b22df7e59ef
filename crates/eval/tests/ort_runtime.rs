//! ONNX Runtime in process: it runs what tract runs with the same results, runs what
//! tract cannot, and the judge and the probe work in it. These tests need the library
//! (scripts/test points ORT_DYLIB_PATH at the conformance venv's); without it they fail,
//! they never pass silently.

use whittle_eval::{
    InputSpec, Judge, OrtLibError, Runner, Runtime, RuntimeChoice, probe, random_inputs,
};
use whittle_ir::text::parse_model;
use whittle_ir::{Model, Tensor};
use whittle_testkit::{cosine, fixture};

/// ONNX Runtime on one thread, or a failure that says how to get it.
fn ort() -> Runtime {
    Runtime::choose(RuntimeChoice::Ort, None, Some(1)).unwrap_or_else(|e| {
        panic!("{e}\nthese tests need ONNX Runtime: scripts/test sets ORT_DYLIB_PATH")
    })
}

const SEQ: &str = "ir_version 8
opset ai.onnx 17
graph {
  input ids: i64[1,seq]
  input mask: f32[1,seq]
  output y: f32[1,seq,8]
  init table: f32[50,8] = random
  init w: f32[8,8] = random
  e = Gather(table, ids)
  m = Unsqueeze(mask, axes)
  init axes: i64[1] = [2]
  h = MatMul(e, w)
  s = Softmax(h) {axis=1}
  y = Mul(s, m)
}
";

fn sets(model: &Model, n: u64) -> Vec<Vec<Tensor>> {
    (0..n)
        .map(|k| {
            let spec = InputSpec {
                seed: k,
                dims: vec![("seq".into(), 3 + k as i64)],
                ..InputSpec::default()
            };
            random_inputs(&model.graph, &spec).unwrap()
        })
        .collect()
}

fn floats(t: &Tensor) -> Vec<f32> {
    t.to_f32_vec().unwrap()
}

#[test]
fn ort_and_tract_agree_on_every_set_of_many_shapes() {
    let model = parse_model(SEQ).unwrap();
    let sets = sets(&model, 4);
    let rt = ort();
    let o = Runner::for_sets(&rt, &model, "m", &sets).unwrap();
    let t = Runner::for_sets(&Runtime::Tract, &model, "m", &sets).unwrap();
    assert_eq!(o.runtime_name(), "ONNX Runtime");
    for set in &sets {
        let (a, b) = (o.run(set).unwrap(), t.run(set).unwrap());
        assert_eq!(a[0].dims, b[0].dims);
        let (a, b) = (floats(&a[0]), floats(&b[0]));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "max abs {worst}");
    }
}

#[test]
fn ort_runs_exported_fixtures_as_tract_does() {
    let rt = ort();
    for name in ["bert_tiny.ts.onnx", "cnn_bn.dyn.ext.onnx"] {
        let model = whittle_onnx::read_model(&fixture(name)).unwrap();
        let set = whittle_eval::random_sets(&model.graph, 1)
            .unwrap()
            .remove(0);
        let a = Runner::new(&rt, &model, name, &set)
            .unwrap()
            .run(&set)
            .unwrap();
        let b = Runner::new(&Runtime::Tract, &model, name, &set)
            .unwrap()
            .run(&set)
            .unwrap();
        assert_eq!(a.len(), b.len(), "{name}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.dims, y.dims, "{name}");
            let c = cosine(&floats(x), &floats(y));
            assert!(c > 0.99999, "{name}: cosine {c}");
        }
    }
}

/// `Scaler` (ai.onnx.ml) is one of the ops tract does not load.
const SCALER: &str = "ir_version 8
opset ai.onnx 17
opset ai.onnx.ml 3
graph {
  input x: f32[2,3]
  output y: f32[2,3]
  y = ai.onnx.ml.Scaler(x) {offset=[1.0, 2.0, 3.0], scale=[2.0, 0.5, -1.0]}
}
";

#[test]
fn ort_runs_what_tract_cannot_load() {
    let model = parse_model(SCALER).unwrap();
    let x = Tensor::from_f32(vec![2, 3], &[1.0, 2.0, 3.0, 5.0, 6.0, 7.0]);
    let err = Runner::new(&Runtime::Tract, &model, "scaler", std::slice::from_ref(&x))
        .err()
        .expect("tract loads Scaler now; pick another op for this test");
    assert!(err.to_string().contains("tract cannot load"), "{err}");
    let y = Runner::new(&ort(), &model, "scaler", std::slice::from_ref(&x))
        .unwrap()
        .run(&[x])
        .unwrap();
    // Scaler: (x - offset) * scale.
    assert_eq!(floats(&y[0]), vec![0.0, 0.0, -0.0, 8.0, 2.0, -4.0]);
}

#[test]
fn the_judge_and_the_probe_work_in_ort() {
    let model = parse_model(SEQ).unwrap();
    let sets = sets(&model, 3);
    let rt = ort();
    let score = Judge::new(&rt, &model, &sets)
        .unwrap()
        .score(&model)
        .unwrap();
    assert_eq!(score.cosine, 1.0);
    assert_eq!(score.top1, 1.0);
    let h = model.graph.find("h").unwrap();
    let mut lens = Vec::new();
    probe::<whittle_eval::EvalError>(&rt, &model, &[h], &sets, "m", |t| {
        lens.push(t[0].dims[1]);
        Ok(())
    })
    .unwrap();
    assert_eq!(lens, vec![3, 4, 5]);
}

#[test]
fn a_file_that_is_not_onnx_runtime_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a library").unwrap();
    let err = whittle_eval::find_library(Some(&fake)).map(|(p, _)| p);
    assert_eq!(err.as_deref().ok(), Some(fake.as_path()));
    // Loading it fails, or (ONNX Runtime already loaded by another test in this process)
    // is refused as a second library: either way the error names the file.
    let e = whittle_eval::load_ort(Some(&fake)).unwrap_err();
    assert!(
        matches!(e, OrtLibError::Load { .. } | OrtLibError::Second { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("libonnxruntime.so"), "{e}");
}
