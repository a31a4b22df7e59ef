//! Decomposition: `exact` reproduces outputs for every conv geometry (tract, random
//! inputs); truncation costs exactly the predicted error; the listing has the depthwise +
//! pointwise shape; layers that would not pay are left alone; budgets hold.

use whittle_compress::decompose::{Data, DecomposeReport, ErrorBudget, Kind, Options, decompose};
use whittle_eval::{InputSpec, random_inputs, run_model};
use whittle_ir::Model;
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_passes::PassCx;
use whittle_testkit::cosine;

fn sets(m: &Model, n: u64) -> Vec<Vec<whittle_ir::Tensor>> {
    (0..n)
        .map(|seed| {
            random_inputs(
                &m.graph,
                &InputSpec {
                    seed,
                    ..InputSpec::default()
                },
            )
            .unwrap()
        })
        .collect()
}

/// Decomposes `src` and returns (original, rewritten, report).
fn run(
    src: &str,
    kinds: &[Kind],
    budget: ErrorBudget,
    calibrated: bool,
) -> (Model, Model, DecomposeReport) {
    let original = parse_model(src).unwrap();
    let mut model = original.clone();
    let data = Data {
        runtime: whittle_eval::Runtime::Tract,
        sets: sets(&original, 8),
        calibrated,
        source: "test".into(),
        ..Data::default()
    };
    let opts = Options {
        kinds: kinds.to_vec(),
        budget,
        ..Options::default()
    };
    let report = decompose(&mut model, &opts, &data, &mut PassCx::default()).unwrap();
    model.graph.verify(false).unwrap();
    (original, model, report)
}

/// Lowest output cosine between the two models on fresh random inputs (seeds 100+).
fn worst_cosine(a: &Model, b: &Model) -> f64 {
    let mut worst = 1.0f64;
    for seed in 100..103 {
        let inputs = random_inputs(
            &a.graph,
            &InputSpec {
                seed,
                ..InputSpec::default()
            },
        )
        .unwrap();
        let ya = run_model(a, "original", &inputs).unwrap();
        let yb = run_model(b, "decomposed", &inputs).unwrap();
        for (x, y) in ya.iter().zip(&yb) {
            worst = worst.min(cosine(&x.to_f32_vec().unwrap(), &y.to_f32_vec().unwrap()));
        }
    }
    worst
}

fn conv_model(cin: usize, cout: usize, attrs: &str, out: &str) -> String {
    let group: usize = attrs
        .split("group=")
        .nth(1)
        .and_then(|s| s.split([',', '}']).next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1);
    format!(
        "ir_version 8
opset ai.onnx 17
graph {{
  input x: f32[1,{cin},9,10]
  output y: f32[{out}]
  init w: f32[{cout},{},3,3] = random
  init b: f32[{cout}] = random
  y = Conv(x, w, b) {{{attrs}}}
}}
",
        cin / group
    )
}

#[test]
fn exact_reproduces_outputs_for_every_conv_geometry() {
    let cases = [
        (
            "group 1",
            conv_model(4, 8, "kernel_shape=[3, 3], pads=[1, 1, 1, 1]", "1,8,9,10"),
        ),
        (
            "group 2",
            conv_model(4, 8, "kernel_shape=[3, 3], group=2", "1,8,7,8"),
        ),
        (
            "strides",
            conv_model(4, 6, "kernel_shape=[3, 3], strides=[2, 2]", "1,6,4,4"),
        ),
        (
            "dilations",
            conv_model(4, 6, "kernel_shape=[3, 3], dilations=[2, 2]", "1,6,5,6"),
        ),
        (
            "asymmetric pads",
            conv_model(4, 6, "kernel_shape=[3, 3], pads=[0, 1, 2, 0]", "1,6,9,9"),
        ),
        (
            "auto_pad",
            conv_model(
                4,
                6,
                "kernel_shape=[3, 3], auto_pad=\"SAME_UPPER\", strides=[2, 2]",
                "1,6,5,5",
            ),
        ),
    ];
    for (what, src) in &cases {
        for calibrated in [false, true] {
            for kind in [Kind::Conv, Kind::Spatial] {
                if kind == Kind::Spatial && what.starts_with("group 2") {
                    continue; // spatial takes group 1 only
                }
                let (a, b, report) = run(src, &[kind], ErrorBudget::Exact, calibrated);
                assert!(
                    report.layers.iter().all(|l| l.chosen.is_some()),
                    "{what} {kind:?}: {:?}",
                    report.lines()
                );
                let c = worst_cosine(&a, &b);
                assert!(
                    c >= 0.99999,
                    "{what} {kind:?} calibrated={calibrated}: cosine {c}"
                );
            }
        }
    }
}

#[test]
fn exact_low_rank_dense_layers_reproduce_outputs() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[3,24]
  output y: f32[3,16]
  output z: f32[3,12]
  init w: f32[24,16] = random
  init g: f32[12,24] = random
  init c: f32[12] = random
  y = MatMul(x, w)
  z = Gemm(x, g, c) {transB=1, alpha=0.5, beta=2.0}
}
";
    for calibrated in [false, true] {
        let (a, b, report) = run(src, &[Kind::Gemm], ErrorBudget::Exact, calibrated);
        assert_eq!(
            report.layers.iter().filter(|l| l.chosen.is_some()).count(),
            2
        );
        let c = worst_cosine(&a, &b);
        assert!(c >= 0.99999, "calibrated={calibrated}: cosine {c}");
    }
}

#[test]
fn the_rewrite_is_depthwise_then_pointwise() {
    let src = conv_model(4, 8, "kernel_shape=[3, 3], pads=[1, 1, 1, 1]", "1,8,9,10");
    let (_, b, _) = run(&src, &[Kind::Conv], ErrorBudget::Exact, false);
    let text = print_model(&b, &PrintOptions::default());
    // m = min(Mg, K) = 8 terms per channel: depthwise 4 -> 32 channels, then 1x1 32 -> 8.
    for want in [
        "init y_depthwise_w_w1: f32[32,1,3,3]",
        "init y_pointwise_w_w2: f32[8,32,1,1]",
        "group=4",
        "kernel_shape=[1, 1], group=1",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(text.matches("= Conv(").count(), 2, "{text}");
    let dw = text.find(
        "y_depthwise_w3 = Conv(x, y_depthwise_w_w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4}",
    );
    let pw =
        text.find("= Conv(y_depthwise_w3, y_pointwise_w_w2, b) {kernel_shape=[1, 1], group=1}");
    assert!(
        matches!((dw, pw), (Some(d), Some(p)) if d < p),
        "depthwise first:\n{text}"
    );
}

/// The weight the rewritten graph computes, from its depthwise and pointwise tensors.
fn effective_weight(m: &Model, cin: usize, cout: usize, rank: usize) -> Vec<f32> {
    let g = &m.graph;
    let get = |suffix: &str| {
        g.initializers()
            .iter()
            .find(|v| g.value(**v).name().contains(suffix))
            .and_then(|v| g.value(*v).initializer())
            .unwrap()
            .to_f32_vec()
            .unwrap()
    };
    let (d, p) = (get("_depthwise_w"), get("_pointwise_w"));
    let mut w = vec![0f32; cout * cin * 9];
    for o in 0..cout {
        for c in 0..cin {
            for r in 0..rank {
                for k in 0..9 {
                    w[(o * cin + c) * 9 + k] +=
                        p[o * cin * rank + c * rank + r] * d[(c * rank + r) * 9 + k];
                }
            }
        }
    }
    w
}

#[test]
fn truncation_costs_exactly_the_predicted_weight_error() {
    // Data-free: the error reported is the relative weight error of what is written.
    let src = conv_model(6, 32, "kernel_shape=[3, 3], pads=[1, 1, 1, 1]", "1,32,9,10");
    let original = parse_model(&src).unwrap();
    let w = original
        .graph
        .constant(original.graph.find("w").unwrap())
        .unwrap()
        .to_f32_vec()
        .unwrap();
    let (_, b, report) = run(&src, &[Kind::Conv], ErrorBudget::Tol(0.6), false);
    let chosen = report.layers[0].chosen.expect("a rank within tol=0.6 pays");
    assert!(chosen.rank < 9, "truncated: {chosen:?}");
    let approx = effective_weight(&b, 6, 32, chosen.rank);
    let diff: f64 = w
        .iter()
        .zip(&approx)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum();
    let norm: f64 = w.iter().map(|x| f64::from(*x).powi(2)).sum();
    let measured = (diff / norm).sqrt();
    assert!(
        (measured - chosen.error).abs() < 1e-5,
        "measured {measured} vs predicted {}",
        chosen.error
    );
    assert!(chosen.error <= 0.6);
}

#[test]
fn a_layer_that_would_not_pay_is_left_alone() {
    // 1x1 conv: K = 1, any rank costs more than the conv itself.
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[1,8,5,5]
  output y: f32[1,16,5,5]
  init w: f32[16,8,1,1] = random
  y = Conv(x, w) {kernel_shape=[1, 1]}
}
";
    let (a, b, report) = run(src, &[Kind::Conv], ErrorBudget::Tol(1.0), false);
    assert!(report.layers[0].chosen.is_none());
    assert!(
        report.layers[0].why.contains("no rank pays"),
        "{}",
        report.layers[0].why
    );
    assert_eq!(
        print_model(&a, &PrintOptions::default()),
        print_model(&b, &PrintOptions::default())
    );
}

#[test]
fn min_gain_and_budgets_hold() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[1,8,12,12]
  output y: f32[1,10]
  init w1: f32[32,8,3,3] = random
  init w2: f32[32,32,3,3] = random
  init fc: f32[32,10] = random
  h = Conv(x, w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
  r = Relu(h)
  h2 = Conv(r, w2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
  p = GlobalAveragePool(h2)
  f = Flatten(p)
  y = MatMul(f, fc)
}
";
    for budget in [ErrorBudget::Cosine(0.99), ErrorBudget::Top1(0.9)] {
        let (a, b, report) = run(src, &[Kind::Conv, Kind::Gemm], budget, true);
        let score = report.score.unwrap();
        assert!(budget.holds(&score), "{budget}: {score:?}");
        for l in &report.layers {
            if let Some(c) = l.chosen {
                assert!(
                    l.macs_before as f64 / c.macs as f64 >= 1.2,
                    "{}: {c:?}",
                    l.site
                );
            }
        }
        if let ErrorBudget::Cosine(x) = budget {
            // The report's figure is what tract computes on the same data.
            assert!(score.cosine >= x);
            assert!(worst_cosine(&a, &b) > 0.9);
        }
    }
}

#[test]
fn budget_parsing_names_the_bad_value() {
    assert_eq!(
        "tol=0.05".parse::<ErrorBudget>(),
        Ok(ErrorBudget::Tol(0.05))
    );
    assert_eq!(
        "top1=0.995".parse::<ErrorBudget>(),
        Ok(ErrorBudget::Top1(0.995))
    );
    assert_eq!("exact".parse::<ErrorBudget>(), Ok(ErrorBudget::Exact));
    assert!(
        "cosine=2"
            .parse::<ErrorBudget>()
            .unwrap_err()
            .contains("[0, 1]")
    );
    assert!(
        "size=3"
            .parse::<ErrorBudget>()
            .unwrap_err()
            .contains("expected tol=X")
    );
}
