//! Helpers shared by the pruning tests.

use whittle_compress::ErrorBudget;
use whittle_compress::decompose::Data;
use whittle_compress::prune::{Kind, Options, PruneReport, prune};
use whittle_eval::{InputSpec, random_inputs, random_sets, run_model};
use whittle_ir::Model;
use whittle_passes::PassCx;
use whittle_testkit::cosine;

/// Options for `kinds` within `budget`: every size allowed (min-gain 1), not measured.
pub fn options(kinds: &[Kind], budget: ErrorBudget) -> Options {
    Options {
        kinds: kinds.to_vec(),
        budget,
        min_gain: 1.0,
        measure: false,
    }
}

/// Prunes a copy of `original` as `opts` says on `sets` random input sets (64 give the
/// refit of a dense layer enough rows to generalise to fresh inputs); the result is
/// verified.
pub fn prune_on(original: &Model, opts: &Options, sets: usize) -> (Model, PruneReport) {
    let mut model = original.clone();
    let data = Data {
        runtime: whittle_eval::Runtime::Tract,
        sets: random_sets(&original.graph, sets).unwrap(),
        calibrated: false,
        source: "test".into(),
        ..Data::default()
    };
    let report = prune(&mut model, opts, &data, &mut PassCx::default()).unwrap();
    model.graph.verify(false).unwrap();
    (model, report)
}

/// Largest absolute output difference on fresh random inputs (seeds 100+), in tract.
pub fn max_diff(a: &Model, b: &Model) -> (f32, f64) {
    let (mut worst, mut cos) = (0f32, 1f64);
    for seed in 100..103 {
        let spec = InputSpec {
            seed,
            ..InputSpec::default()
        };
        let inputs = random_inputs(&a.graph, &spec).unwrap();
        let ya = run_model(a, "original", &inputs).unwrap();
        let yb = run_model(b, "pruned", &inputs).unwrap();
        for (x, y) in ya.iter().zip(&yb) {
            let (x, y) = (x.to_f32_vec().unwrap(), y.to_f32_vec().unwrap());
            for (p, q) in x.iter().zip(&y) {
                worst = worst.max((p - q).abs());
            }
            cos = cos.min(cosine(&x, &y));
        }
    }
    (worst, cos)
}
