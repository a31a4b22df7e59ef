//! Helpers shared by the pruning tests.

use whittle_eval::{InputSpec, random_inputs, run_model};
use whittle_ir::Model;
use whittle_testkit::cosine;

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
