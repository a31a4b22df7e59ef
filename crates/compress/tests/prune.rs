//! Structured pruning: which groups are found and which are left alone (and why);
//! channels that carry nothing are removed exactly; budgets hold on the data; outputs run
//! in tract with the smaller shapes.

mod common;

use common::{max_diff, options, prune_on};
use whittle_compress::ErrorBudget;
use whittle_compress::prune::{Kind, Options, PruneReport};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_ir::{Model, Tensor};

/// Prunes a copy of `original` judged on 64 random sets.
fn run_on(original: &Model, kinds: &[Kind], budget: ErrorBudget) -> (Model, PruneReport) {
    prune_on(original, &options(kinds, budget), 64)
}

fn run(src: &str, kinds: &[Kind], budget: ErrorBudget) -> (Model, Model, PruneReport) {
    let original = parse_model(src).unwrap();
    let (model, report) = run_on(&original, kinds, budget);
    (original, model, report)
}

fn why(report: &PruneReport, site: &str) -> String {
    report
        .groups
        .iter()
        .find(|g| g.site == site)
        .map(|g| g.why.clone())
        .unwrap_or_else(|| panic!("no report line for {site}: {report:?}"))
}

fn kept(report: &PruneReport, site: &str) -> (usize, usize) {
    let g = report.groups.iter().find(|g| g.site == site).unwrap();
    (g.kept, g.total)
}

/// conv1 (8 filters) → Relu → conv2 (padded by `pads`); filters `dead` of conv1 have zero
/// weights and bias `dead_bias`, so they output the constant Relu(dead_bias).
fn conv_pair(dead: &[usize], dead_bias: f32, pads: usize) -> Model {
    let out = 8 - 2 * (1 - pads);
    let src = format!(
        "ir_version 8
opset ai.onnx 17
graph {{
  input x: f32[2,3,8,8]
  output y: f32[2,4,{out},{out}]
  init w1: f32[8,3,3,3] = random
  init b1: f32[8] = random
  init w2: f32[4,8,3,3] = random
  init b2: f32[4] = random
  h = Conv(x, w1, b1) {{kernel_shape=[3, 3], pads=[1, 1, 1, 1]}} @conv1
  r = Relu(h) @relu
  y = Conv(r, w2, b2) {{kernel_shape=[3, 3], pads=[{pads}, {pads}, {pads}, {pads}]}} @conv2
}}
"
    );
    let mut m = parse_model(&src).unwrap();
    let g = &mut m.graph;
    let (w1, b1) = (g.find("w1").unwrap(), g.find("b1").unwrap());
    let mut w = g.constant(w1).unwrap().to_f32_vec().unwrap();
    let mut b = g.constant(b1).unwrap().to_f32_vec().unwrap();
    for &c in dead {
        w[c * 27..(c + 1) * 27].fill(0.0);
        b[c] = dead_bias;
    }
    g.set_initializer(w1, Tensor::from_f32(vec![8, 3, 3, 3], &w));
    g.set_initializer(b1, Tensor::from_f32(vec![8], &b));
    m
}

#[test]
fn dead_filters_are_removed_exactly() {
    // Dead filters output Relu(0) = 0 (nothing to move), or Relu(0.5) = 0.5: a constant
    // the next layer's bias absorbs when that layer does not pad.
    for (bias, pads) in [(0.0f32, 1), (0.5, 0)] {
        let original = conv_pair(&[1, 4, 6], bias, pads);
        let (model, report) = run_on(&original, &[Kind::Conv], ErrorBudget::Exact);
        assert_eq!(kept(&report, "conv1"), (5, 8), "bias {bias}: {report:?}");
        let (diff, _) = max_diff(&original, &model);
        assert!(diff < 1e-4, "bias {bias}: outputs moved by {diff}");
        let text = print_model(&model, &PrintOptions::default());
        assert!(text.contains("f32[5,3,3,3]"), "conv1 weight:\n{text}");
        assert!(text.contains("f32[4,5,3,3]"), "conv2 weight:\n{text}");
    }
}

#[test]
fn exact_budget_leaves_live_filters_alone() {
    let original = conv_pair(&[], 0.0, 1);
    let (model, report) = run_on(&original, &[Kind::Conv], ErrorBudget::Exact);
    assert_eq!(kept(&report, "conv1"), (8, 8));
    assert_eq!(max_diff(&original, &model).0, 0.0);
}

#[test]
fn a_constant_that_padding_breaks_is_not_dropped_exactly() {
    // Relu(0.5) everywhere, but the reader pads with zeros: at the border its patches see
    // 0.5 and 0 — not a constant its bias can absorb.
    let original = conv_pair(&[1, 4, 6], 0.5, 1);
    let (model, report) = run_on(&original, &[Kind::Conv], ErrorBudget::Exact);
    assert_eq!(kept(&report, "conv1"), (8, 8), "{report:?}");
    assert_eq!(max_diff(&original, &model).0, 0.0);
}

#[test]
fn whole_model_budget_holds_and_shapes_shrink() {
    // 8 random filters can only halve (counts step by 4 below 16 channels): a budget
    // loose enough for that.
    let original = conv_pair(&[], 0.0, 1);
    let (model, report) = run_on(&original, &[Kind::Conv], ErrorBudget::Cosine(0.8));
    let (k, total) = kept(&report, "conv1");
    assert!(k < total, "nothing pruned at cosine 0.8: {report:?}");
    let score = report.score.as_ref().unwrap();
    assert!(score.cosine >= 0.8, "budget missed on the data: {score:?}");
    // Fresh inputs too (the same distribution): close to the budget.
    let (_, cos) = max_diff(&original, &model);
    assert!(cos >= 0.75, "cosine on fresh inputs {cos}");
    assert!(report.macs_after < report.macs_before);
}

#[test]
fn residual_tied_channels_are_left_alone() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[1,4,6,6]
  output y: f32[1,4,6,6]
  init w1: f32[4,4,3,3] = random
  init w2: f32[4,4,3,3] = random
  h = Conv(x, w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @conv1
  s = Add(h, x) @residual
  r = Relu(s)
  y = Conv(r, w2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @conv2
}
";
    let (original, model, report) = run(src, &[Kind::Conv], ErrorBudget::Tol(1.0));
    assert!(
        why(&report, "conv1").contains("joins another branch"),
        "{report:?}"
    );
    assert_eq!(max_diff(&original, &model).0, 0.0);
}

#[test]
fn a_concat_with_a_graph_input_is_left_alone() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[1,4,6,6]
  output y: f32[1,4,6,6]
  init w1: f32[4,4,3,3] = random
  init w2: f32[4,8,3,3] = random
  h = Conv(x, w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @cat_in
  c = Concat(h, x) {axis=1}
  y = Conv(c, w2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @after_cat
}
";
    let (original, model, report) = run(src, &[Kind::Conv], ErrorBudget::Tol(1.0));
    assert!(
        why(&report, "cat_in").contains("also joins 'x'"),
        "{report:?}"
    );
    assert_eq!(max_diff(&original, &model).0, 0.0);
}

#[test]
fn a_shared_weight_is_not_a_producer() {
    // w1 is read by two convs: neither may change it, so neither is a group.
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[1,4,6,6]
  output y: f32[1,4,6,6]
  init w1: f32[4,4,3,3] = random
  init w2: f32[4,4,3,3] = random
  a = Conv(x, w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @first
  b = Conv(a, w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @second
  y = Conv(b, w2) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
}
";
    let (original, model, report) = run(src, &[Kind::Conv], ErrorBudget::Tol(1.0));
    assert!(
        report
            .groups
            .iter()
            .all(|g| g.site != "first" && g.site != "second")
    );
    assert_eq!(max_diff(&original, &model).0, 0.0);
}

#[test]
fn batchnorm_pool_and_flatten_into_gemm() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[4,3,8,8]
  output y: f32[4,5]
  init w1: f32[8,3,3,3] = random
  init s: f32[8] = random
  init bb: f32[8] = random
  init mu: f32[8] = random
  init var: f32[8] = [1, 2, 1, 2, 1, 2, 1, 2]
  init wg: f32[5,128] = random
  init bg: f32[5] = random
  h = Conv(x, w1) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @conv
  n = BatchNormalization(h, s, bb, mu, var) @bn
  r = Relu(n)
  p = MaxPool(r) {kernel_shape=[2, 2], strides=[2, 2]}
  f = Flatten(p) {axis=1}
  y = Gemm(f, wg, bg) {transB=1} @fc
}
";
    let (original, model, report) = run(src, &[Kind::Conv], ErrorBudget::Cosine(0.9));
    let (k, total) = kept(&report, "conv");
    assert_eq!(total, 8);
    assert!(k < 8, "{report:?}");
    let text = print_model(&model, &PrintOptions::default());
    assert!(
        text.contains(&format!("f32[5,{}]", k * 16)),
        "Gemm weight:\n{text}"
    );
    assert!(text.contains(&format!("f32[{k}]")), "BN vectors:\n{text}");
    let (_, cos) = max_diff(&original, &model);
    assert!(cos >= 0.8, "cosine {cos}");
}

#[test]
fn ffn_neurons_through_bias_and_silu() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,5,16]
  output y: f32[2,5,16]
  init w1: f32[16,64] = random
  init b1: f32[64] = random
  init w2: f32[64,16] = random
  init b2: f32[16] = random
  h: f32[2,5,64] = MatMul(x, w1) @up
  hb: f32[2,5,64] = Add(h, b1)
  sg: f32[2,5,64] = Sigmoid(hb)
  a: f32[2,5,64] = Mul(hb, sg)
  o: f32[2,5,16] = MatMul(a, w2) @down
  y = Add(o, b2)
}
";
    let (original, model, report) = run(src, &[Kind::Ffn], ErrorBudget::Cosine(0.98));
    let (k, total) = kept(&report, "up");
    assert_eq!(total, 64);
    assert!(k < 64, "{report:?}");
    let text = print_model(&model, &PrintOptions::default());
    assert!(text.contains(&format!("f32[16,{k}]")), "up weight:\n{text}");
    assert!(
        text.contains(&format!("f32[{k},16]")),
        "down weight:\n{text}"
    );
    assert!(
        text.contains(&format!("f32[2,5,{k}]")),
        "declared dims follow:\n{text}"
    );
    let (_, cos) = max_diff(&original, &model);
    assert!(cos >= 0.95, "cosine {cos}");
    // --prune dense does not take a transformer's FFN.
    let (_, _, dense) = run(src, &[Kind::Dense], ErrorBudget::Cosine(0.98));
    assert!(dense.groups.is_empty(), "{dense:?}");
}

/// `--measure`: every chosen group is timed in tract; a size is kept only when its
/// layers got faster, and a dropped one says why. (Which way tract goes on a machine is
/// not asserted: the report must agree with its own timings.)
#[test]
fn measure_keeps_only_sizes_tract_runs_faster() {
    let original = conv_pair(&[1, 4, 6], 0.0, 1);
    let opts = Options {
        measure: true,
        ..options(&[Kind::Conv], ErrorBudget::Exact)
    };
    let (model, report) = prune_on(&original, &opts, 16);
    let g = report.groups.iter().find(|g| g.site == "conv1").unwrap();
    let (before, after) = g.latency.expect("the chosen size was timed");
    assert!(before > 0.0 && after > 0.0, "{g:?}");
    if after < before {
        assert_eq!((g.kept, g.total), (5, 8), "{g:?}");
        assert!(max_diff(&original, &model).0 < 1e-4);
    } else {
        assert_eq!(g.kept, g.total, "{g:?}");
        assert!(g.why.contains("not tract time"), "{g:?}");
        assert_eq!(max_diff(&original, &model).0, 0.0);
    }
}
