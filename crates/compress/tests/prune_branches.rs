//! Channels that branch (SqueezeNet's fire modules). Joined by a Concat along the
//! channel axis: the layers it joins are one group, each keeping the chosen channels in
//! its range; a part left with none leaves the Concat. Fanning out to several layers:
//! every reader loses the same channels and is refit on its own. Guards: a Concat that
//! also joins something else, one along another axis, a part read elsewhere, a Concat of
//! Concats, a fan-out through a Flatten.

mod common;

use common::{max_diff, options, prune_on};
use whittle_compress::ErrorBudget;
use whittle_compress::prune::{Kind, PruneReport};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_ir::{Model, Tensor};

/// squeeze → Relu → [expand1x1 (4), expand3x3 (4)] → Relu each → Concat → MaxPool →
/// next (a 1×1 conv). `extra` is spliced into the graph, `cat` is the Concat's line.
fn fire(cat: &str, extra: &str, outputs: &str) -> String {
    format!(
        "ir_version 8
opset ai.onnx 17
graph {{
  input x: f32[2,3,8,8]
  output y: f32[2,4,4,4]
{outputs}
  init ws: f32[6,3,1,1] = random
  init w1: f32[4,6,1,1] = random
  init b1: f32[4] = random
  init w3: f32[4,6,3,3] = random
  init b3: f32[4] = random
  init wn: f32[4,8,1,1] = random
  init bn: f32[4] = random
  s = Conv(x, ws) {{kernel_shape=[1, 1]}} @squeeze
  r = Relu(s)
  e1 = Conv(r, w1, b1) {{kernel_shape=[1, 1]}} @e1
  a = Relu(e1)
  e3 = Conv(r, w3, b3) {{kernel_shape=[3, 3], pads=[1, 1, 1, 1]}} @e3
  b = Relu(e3)
{extra}
  {cat}
  p = MaxPool(c) {{kernel_shape=[2, 2], strides=[2, 2]}}
  y = Conv(p, wn, bn) {{kernel_shape=[1, 1]}} @next
}}
"
    )
}

fn plain_fire() -> Model {
    parse_model(&fire("c = Concat(a, b) {axis=1}", "", "")).unwrap()
}

/// Zeroes the filters `dead` of layer weight `w` (and sets their bias to `bias`).
fn kill(m: &mut Model, w: &str, b: &str, dead: &[usize], bias: f32) {
    let g = &mut m.graph;
    let (wv, bv) = (g.find(w).unwrap(), g.find(b).unwrap());
    let wt = g.constant(wv).unwrap().clone();
    let per = wt.dims[1..].iter().product::<i64>() as usize;
    let mut wf = wt.to_f32_vec().unwrap();
    let mut bf = g.constant(bv).unwrap().to_f32_vec().unwrap();
    for &c in dead {
        wf[c * per..(c + 1) * per].fill(0.0);
        bf[c] = bias;
    }
    g.set_initializer(wv, Tensor::from_f32(wt.dims.clone(), &wf));
    g.set_initializer(bv, Tensor::from_f32(vec![bf.len() as i64], &bf));
}

/// Rows `dead` of the squeeze weight zeroed: those channels output Relu(0) = 0.
fn kill_squeeze(m: &mut Model, dead: &[usize]) {
    let g = &mut m.graph;
    let wv = g.find("ws").unwrap();
    let mut w = g.constant(wv).unwrap().to_f32_vec().unwrap();
    for &c in dead {
        w[c * 3..(c + 1) * 3].fill(0.0);
    }
    g.set_initializer(wv, Tensor::from_f32(vec![6, 3, 1, 1], &w));
}

fn line<'a>(report: &'a PruneReport, site: &str) -> &'a whittle_compress::prune::GroupReport {
    report
        .groups
        .iter()
        .find(|g| g.site == site)
        .unwrap_or_else(|| panic!("no report line for {site}: {report:?}"))
}

#[test]
fn dead_channels_of_both_parts_are_removed_exactly() {
    // e1's channels 1 and 3 output Relu(0) = 0; all of e3's output Relu(0.5) = 0.5, a
    // constant the next layer's bias absorbs: e3 leaves the Concat altogether.
    let mut original = plain_fire();
    kill(&mut original, "w1", "b1", &[1, 3], 0.0);
    kill(&mut original, "w3", "b3", &[0, 1, 2, 3], 0.5);
    let (model, report) = prune_on(&original, &options(&[Kind::Conv], ErrorBudget::Exact), 64);
    let g = line(&report, "e1+e3");
    assert_eq!(
        (g.kept, g.total, g.consumer.as_str()),
        (2, 8, "next"),
        "{report:?}"
    );
    let (diff, _) = max_diff(&original, &model);
    assert!(diff < 1e-4, "outputs moved by {diff}");
    let text = print_model(&model, &PrintOptions::default());
    assert!(text.contains("f32[2,6,1,1]"), "e1 keeps 2 filters:\n{text}");
    assert!(
        text.contains("f32[4,2,1,1]"),
        "next reads 2 channels:\n{text}"
    );
    assert!(text.contains("Concat(a)"), "e3 left the Concat:\n{text}");
}

#[test]
fn each_part_keeps_its_own_channels() {
    // e1's channel 2 and e3's channel 0 are dead: 3 + 3 kept, each part sliced in its
    // own range (e3's kept filters are its 1, 2, 3, not the group's).
    let mut original = plain_fire();
    kill(&mut original, "w1", "b1", &[2], 0.0);
    kill(&mut original, "w3", "b3", &[0], 0.0);
    let (model, report) = prune_on(&original, &options(&[Kind::Conv], ErrorBudget::Exact), 64);
    assert_eq!(line(&report, "e1+e3").kept, 6, "{report:?}");
    let (diff, _) = max_diff(&original, &model);
    assert!(diff < 1e-4, "outputs moved by {diff}");
    let text = print_model(&model, &PrintOptions::default());
    assert!(text.contains("f32[3,6,3,3]"), "e3 keeps 3 filters:\n{text}");
    assert!(
        text.contains("f32[4,6,1,1]"),
        "next reads 6 channels:\n{text}"
    );
}

#[test]
fn a_budget_holds_through_the_concat() {
    let original = plain_fire();
    let opts = options(&[Kind::Conv], ErrorBudget::Cosine(0.97));
    let (model, report) = prune_on(&original, &opts, 64);
    let g = line(&report, "e1+e3");
    assert!(
        g.kept < g.total,
        "nothing pruned at cosine 0.97: {report:?}"
    );
    let score = report.score.as_ref().unwrap();
    assert!(score.cosine >= 0.97, "budget missed on the data: {score:?}");
    let (_, cos) = max_diff(&original, &model);
    assert!(cos >= 0.9, "cosine on fresh inputs {cos}");
}

#[test]
fn concats_that_are_not_all_parts_are_left_alone() {
    let guards = [
        // The Concat also joins the squeeze's activations (not a layer's own channels).
        (
            "c = Concat(a, b, r) {axis=1}",
            "",
            "",
            "which is not a prunable layer's",
        ),
        // Along the spatial axis, channels do not add up.
        ("c = Concat(a, b) {axis=2}", "", "", "mixes channels"),
        // A part is a graph output too.
        (
            "c = Concat(a, b) {axis=1}",
            "",
            "  output a: f32[2,4,8,8]",
            "graph output",
        ),
        // A Concat of Concats.
        (
            "c = Concat(ab, b2) {axis=1}",
            "  init w4: f32[4,6,3,3] = random\n  ab = Concat(a, b) {axis=1}\n  b2 = Conv(r, w4) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} @e4",
            "",
            "another Concat",
        ),
    ];
    for (cat, extra, outputs, why) in guards {
        let mut src = fire(cat, extra, outputs);
        if cat.contains("(a, b, r)") {
            src = src.replace("wn: f32[4,8,1,1]", "wn: f32[4,14,1,1]");
        }
        if cat.contains("axis=2") {
            src = src
                .replace("y: f32[2,4,4,4]", "y: f32[2,4,8,4]")
                .replace("wn: f32[4,8,1,1]", "wn: f32[4,4,1,1]");
        }
        if cat.contains("ab") {
            src = src.replace("wn: f32[4,8,1,1]", "wn: f32[4,12,1,1]");
        }
        let original = parse_model(&src).unwrap();
        let opts = options(&[Kind::Conv], ErrorBudget::Tol(1.0));
        let (_, report) = prune_on(&original, &opts, 16);
        let e1 = line(&report, "e1");
        assert!(e1.why.contains(why), "{cat}: {report:?}");
        // The squeeze (read by both expands) may be pruned; no expand conv is.
        let expands = || report.groups.iter().filter(|g| g.site.starts_with('e'));
        assert!(expands().count() >= 2, "{cat}: {report:?}");
        assert!(expands().all(|g| g.kind.is_none()), "{cat}: {report:?}");
    }
}

#[test]
fn ffn_neurons_through_a_concat_on_the_last_axis() {
    // Two up projections on [B, S, K] activations, concatenated on the last axis: the
    // attention search sees their cones meet, the channel search a Concat. Dead neurons
    // (zero columns: Relu(0) = 0) are removed exactly.
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,5,8]
  output y: f32[2,5,4]
  init w1: f32[8,6] = random
  init w2: f32[8,6] = random
  init w3: f32[12,4] = random
  a: f32[2,5,6] = MatMul(x, w1) @up1
  b: f32[2,5,6] = MatMul(x, w2) @up2
  ra: f32[2,5,6] = Relu(a)
  rb: f32[2,5,6] = Relu(b)
  c: f32[2,5,12] = Concat(ra, rb) {axis=-1}
  y = MatMul(c, w3) @down
}
";
    let mut original = parse_model(src).unwrap();
    let g = &mut original.graph;
    let w1 = g.find("w1").unwrap();
    let mut w = g.constant(w1).unwrap().to_f32_vec().unwrap();
    for row in 0..8 {
        w[row * 6 + 1] = 0.0;
        w[row * 6 + 4] = 0.0;
    }
    g.set_initializer(w1, Tensor::from_f32(vec![8, 6], &w));
    let (model, report) = prune_on(&original, &options(&[Kind::Ffn], ErrorBudget::Exact), 64);
    let g = line(&report, "up1+up2");
    assert_eq!((g.kept, g.total), (10, 12), "{report:?}");
    assert!(max_diff(&original, &model).0 < 1e-4);
}

#[test]
fn a_squeeze_read_by_both_expands_is_pruned_for_both() {
    let mut original = plain_fire();
    kill_squeeze(&mut original, &[2, 5]);
    let (model, report) = prune_on(&original, &options(&[Kind::Conv], ErrorBudget::Exact), 64);
    let g = line(&report, "squeeze");
    assert_eq!((g.kept, g.total), (4, 6), "{report:?}");
    assert_eq!(g.consumer, "e1, e3");
    let (diff, _) = max_diff(&original, &model);
    assert!(diff < 1e-4, "outputs moved by {diff}");
    let text = print_model(&model, &PrintOptions::default());
    for shape in ["f32[4,3,1,1]", "f32[4,4,1,1]", "f32[4,4,3,3]"] {
        assert!(text.contains(shape), "{shape} (squeeze, e1, e3):\n{text}");
    }
}

#[test]
fn fan_out_within_a_budget_refits_every_reader() {
    let original = plain_fire();
    let opts = options(&[Kind::Conv], ErrorBudget::Cosine(0.97));
    let (model, report) = prune_on(&original, &opts, 64);
    let g = line(&report, "squeeze");
    assert_eq!(g.consumer, "e1, e3");
    let score = report.score.as_ref().unwrap();
    assert!(score.cosine >= 0.97, "budget missed on the data: {score:?}");
    let (_, cos) = max_diff(&original, &model);
    assert!(cos >= 0.9, "cosine on fresh inputs {cos}");
}

#[test]
fn a_fan_out_through_a_flatten_is_left_alone() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,3,4,4]
  output y: f32[2,4,4,4]
  output z: f32[2,5]
  init w1: f32[6,3,1,1] = random
  init w2: f32[4,6,1,1] = random
  init w3: f32[96,5] = random
  h = Conv(x, w1) {kernel_shape=[1, 1]} @first
  r = Relu(h)
  y = Conv(r, w2) {kernel_shape=[1, 1]} @conv
  f = Flatten(r) {axis=1}
  z = MatMul(f, w3) @dense
}
";
    let original = parse_model(src).unwrap();
    let (model, report) = prune_on(
        &original,
        &options(&[Kind::Conv], ErrorBudget::Tol(1.0)),
        16,
    );
    assert!(
        line(&report, "first").why.contains("through a Flatten"),
        "{report:?}"
    );
    assert_eq!(max_diff(&original, &model).0, 0.0);
}
