//! `--budget` for quantization: the layer whose quantization costs the most is the one
//! kept float, only as many layers as the budget needs are kept, and the result is
//! measured, not predicted.

mod lossy;

use whittle_compress::ErrorBudget;
use whittle_compress::quant::QuantizeWeights;
use whittle_compress::quant::budget::{fit, fit_in_groups};
use whittle_eval::Judge;
use whittle_ir::Model;
use whittle_ir::text::parse_model;
use whittle_passes::PassCx;

/// Three MatMuls in a chain; `w2` has one huge entry, so per-tensor int8 flattens the
/// rest of it to zero: quantizing it costs far more than the others.
fn model() -> Model {
    let mut m = parse_model(
        "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[4,32]
  output y: f32[4,32]
  init w1: f32[32,32] = random
  init w2: f32[32,32] = random
  init w3: f32[32,32] = random
  a = MatMul(x, w1)
  b = MatMul(a, w2)
  y = MatMul(b, w3)
}
",
    )
    .unwrap();
    let g = &mut m.graph;
    let v = g.find("w2").unwrap();
    let mut w = g.value(v).initializer().unwrap().to_f32_vec().unwrap();
    w[5] = 1000.0;
    g.set_initializer(v, whittle_ir::Tensor::from_f32(vec![32, 32], &w));
    m
}

fn sets(m: &Model) -> Vec<Vec<whittle_ir::Tensor>> {
    whittle_eval::random_sets(&m.graph, 4).unwrap()
}

/// Per-tensor int8 weights on every MatMul but the `excluded` ones.
fn quantize(
    m: &mut Model,
    excluded: &[String],
) -> Result<Vec<String>, whittle_compress::quant::QuantError> {
    let mut cx = PassCx::default();
    cx.settings
        .deny
        .extend(excluded.iter().map(|s| ("*".to_string(), s.clone())));
    lossy::run(
        vec![Box::new(QuantizeWeights {
            per_channel: false,
            min_elements: 1,
            ..QuantizeWeights::default()
        })],
        m,
        &mut cx,
    )?;
    Ok(cx
        .journal
        .log
        .into_iter()
        .map(|(_, _, site)| site)
        .collect())
}

fn site_of(m: &Model, weight: &str) -> String {
    let g = &m.graph;
    let v = g.find(weight).unwrap();
    let reader = g.value(v).uses()[0].node;
    whittle_passes::anchor(g, reader)
}

#[test]
fn the_costliest_layer_is_kept_float_and_the_budget_holds() {
    let m = model();
    let judge = Judge::new(&whittle_eval::Runtime::Tract, &m, &sets(&m)).unwrap();
    let fitted = fit(&m, &judge, ErrorBudget::Cosine(0.9999), quantize).unwrap();
    assert_eq!(fitted.sites.len(), 3);
    assert!(
        fitted.all.cosine < 0.9999,
        "all quantized: {:?}",
        fitted.all
    );
    assert_eq!(fitted.kept, vec![site_of(&m, "w2")], "{fitted:?}");
    assert!(
        ErrorBudget::Cosine(0.9999).holds(&fitted.score),
        "{fitted:?}"
    );
    // The score is what the chosen model measures.
    let mut chosen = m.clone();
    quantize(&mut chosen, &fitted.kept).unwrap();
    assert_eq!(judge.score(&chosen).unwrap(), fitted.score);
    let notes = fitted.notes("test data");
    assert!(
        notes[0]
            .1
            .starts_with("kept float for --budget cosine=0.9999"),
        "{notes:?}"
    );
    assert!(
        notes.last().unwrap().1.contains("1 kept float"),
        "{notes:?}"
    );
}

#[test]
fn a_loose_budget_keeps_nothing_and_tol_is_refused() {
    let m = model();
    let judge = Judge::new(&whittle_eval::Runtime::Tract, &m, &sets(&m)).unwrap();
    let fitted = fit(&m, &judge, ErrorBudget::Cosine(0.5), quantize).unwrap();
    assert!(fitted.kept.is_empty());
    assert_eq!(fitted.evaluations, 1);
    assert!(fit(&m, &judge, ErrorBudget::Tol(0.1), quantize).is_err());
    // A budget nothing can meet but the float model keeps every layer float.
    let all = fit(&m, &judge, ErrorBudget::Cosine(1.0), quantize).unwrap();
    assert_eq!(all.kept.len(), 3);
    assert_eq!(all.score.cosine, 1.0);
}

#[test]
fn many_sites_are_measured_and_kept_in_groups() {
    let m = model();
    let judge = Judge::new(&whittle_eval::Runtime::Tract, &m, &sets(&m)).unwrap();
    // At most two units: [w1, w2] and [w3]; the group holding w2 is the costly one.
    let fitted = fit_in_groups(&m, &judge, ErrorBudget::Cosine(0.9999), 2, quantize).unwrap();
    let (w1, w2) = (site_of(&m, "w1"), site_of(&m, "w2"));
    assert_eq!(fitted.kept, vec![w1.clone(), w2.clone()], "{fitted:?}");
    assert_eq!(fitted.kept_groups, vec![vec![w1.clone(), w2]], "{fitted:?}");
    // Two costs measured, then the bisection (one trial) — not one per site.
    assert_eq!(fitted.evaluations, 4, "{fitted:?}");
    assert!(
        ErrorBudget::Cosine(0.9999).holds(&fitted.score),
        "{fitted:?}"
    );
    let notes = fitted.notes("test data");
    assert_eq!(
        notes.len(),
        2,
        "one line for the group, one summary: {notes:?}"
    );
    assert_eq!(notes[0].0, w1);
    assert!(notes[0].1.contains("(measured as one group)"), "{notes:?}");
}
