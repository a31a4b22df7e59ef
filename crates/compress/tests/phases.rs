//! Phases as a type: a lossless pass over a model that a lossy pass changed is refused
//! (it would fold the int8 weights back into float), a lossy pass never runs to a fixed
//! point, no lossy pass is named by `--passes`, and clean-up runs in every phase.

use whittle_compress::quant::QuantizeWeights;
use whittle_ir::Phase;
use whittle_ir::text::parse_model;
use whittle_passes::cleanup::DeadCode;
use whittle_passes::{Level, PassCx, PassError, PassSettings, Pipeline};

/// Settings with tract as constant folding's evaluator, as whittle's driver gives them.
fn settings() -> PassSettings {
    PassSettings {
        evaluator: whittle_ir::evaluate::Evaluator::new(whittle_eval::TractNodes),
        ..PassSettings::default()
    }
}

/// A pass context with [`settings`].
fn cx() -> PassCx {
    PassCx::new(settings())
}

const MODEL: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,64]
  output y: f32[2,32]
  init w: f32[64,32] = random
  init unused: f32[4] = random
  y = MatMul(x, w)
}
";

fn quantized() -> whittle_ir::Model {
    let mut m = parse_model(MODEL).unwrap();
    Pipeline::for_level(Level::O2)
        .run(&mut m, &mut cx())
        .unwrap();
    assert!(m.phase <= Phase::Lossless);
    let q = QuantizeWeights {
        min_elements: 16,
        ..QuantizeWeights::default()
    };
    Pipeline::once(vec![Box::new(q)])
        .run(&mut m, &mut cx())
        .unwrap();
    m
}

#[test]
fn a_lossless_pass_over_a_lossy_encoding_is_refused() {
    let mut m = quantized();
    assert_eq!(m.phase, Phase::Lossy);
    let before = m.clone();
    let err = Pipeline::for_level(Level::O2)
        .run(&mut m, &mut cx())
        .unwrap_err();
    assert!(
        matches!(
            err,
            PassError::Phase {
                phase: Phase::Lossless,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("over a model in the lossy phase"),
        "{err}"
    );
    assert_eq!(m, before, "nothing ran");
    // Clean-up still runs over it.
    Pipeline::from_passes(vec![Box::new(DeadCode)])
        .run(&mut m, &mut cx())
        .unwrap();
    assert_eq!(m.phase, Phase::Lossy, "clean-up moves no phase");
}

#[test]
fn a_lossy_pass_runs_once_and_is_no_pass_of_a_level_or_of_passes() {
    let mut m = parse_model(MODEL).unwrap();
    let err = Pipeline::from_passes(vec![Box::new(QuantizeWeights::default())])
        .run(&mut m, &mut cx())
        .unwrap_err();
    assert!(err.to_string().contains("lossy passes run once"), "{err}");
    assert_eq!(m.phase, Phase::Prepare, "nothing ran");
    for level in [Level::O0, Level::O1, Level::O2] {
        assert!(
            !Pipeline::for_level(level)
                .names()
                .iter()
                .any(|n| n.starts_with("quantize"))
        );
    }
    let named = Pipeline::with_passes(&["quantize-int8-weights".to_string()]);
    assert!(named.is_err_and(|e| e.contains("unknown pass")));
}
