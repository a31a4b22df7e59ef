//! Sets of many shapes (sentences of their own lengths) run on one load with symbolic
//! dims, and give what one load per shape gives.

use whittle_eval::{InputSpec, Judge, Runner, probe, random_inputs, run_model};
use whittle_ir::Tensor;
use whittle_ir::text::parse_model;

const SRC: &str = "ir_version 8
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

fn sets() -> Vec<Vec<Tensor>> {
    let model = parse_model(SRC).unwrap();
    (0..5)
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

#[test]
fn one_symbolic_load_runs_every_length() {
    let model = parse_model(SRC).unwrap();
    let sets = sets();
    let shared = Runner::for_sets(&whittle_eval::Runtime::Tract, &model, "m", &sets).unwrap();
    for set in &sets {
        let a = shared.run(set).unwrap();
        let b = run_model(&model, "m", set).unwrap();
        assert_eq!(a[0].dims, b[0].dims);
        assert_eq!(a[0].to_f32_vec().unwrap(), b[0].to_f32_vec().unwrap());
    }
    // The judge and the probe take that path: the model judged against itself is exact,
    // and the probe sees every set's own shape.
    let score = Judge::new(&whittle_eval::Runtime::Tract, &model, &sets)
        .unwrap()
        .score(&model)
        .unwrap();
    assert_eq!(score.cosine, 1.0);
    let y = model.graph.find("h").unwrap();
    let mut lens = Vec::new();
    probe::<whittle_eval::EvalError>(
        &whittle_eval::Runtime::Tract,
        &model,
        &[y],
        &sets,
        "m",
        |t| {
            lens.push(t[0].dims[1]);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(lens, vec![3, 4, 5, 6, 7]);
}

#[test]
fn a_judge_given_the_reference_scores_as_one_that_ran_it() {
    // `--verify` computes the original's outputs once and the lossy judge shares them:
    // scores must be exactly those of a judge that ran the original itself.
    let model = parse_model(SRC).unwrap();
    let other = parse_model(&SRC.replace("y = Mul(s, m)", "y = Add(s, m)")).unwrap();
    let sets = sets();
    let rt = whittle_eval::Runtime::Tract;
    let outputs: Vec<Vec<Tensor>> = sets
        .iter()
        .map(|s| run_model(&model, "m", s).unwrap())
        .collect();
    let ran = Judge::new(&rt, &model, &sets)
        .unwrap()
        .score(&other)
        .unwrap();
    let given = Judge::with_reference(&rt, &sets, &outputs)
        .unwrap()
        .score(&other)
        .unwrap();
    assert!(ran.cosine < 0.999, "the two models should differ: {ran:?}");
    assert_eq!(ran, given);
}
