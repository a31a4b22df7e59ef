//! Attention-head pruning: which attentions are found and which are left alone (and
//! why); heads that carry a constant are removed exactly (outputs equal in tract); Reshape
//! targets that spell the head count out are rewritten; budgets hold on the data.

mod common;

use common::{max_diff, options, prune_on};
use whittle_compress::ErrorBudget;
use whittle_compress::prune::{Kind, PruneReport};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_ir::{Model, Tensor};

/// What to vary in [`attention`].
struct Variant {
    /// The Reshape target that splits the heads out.
    split: &'static str,
    /// The mask's dims.
    mask: &'static str,
    /// Extra lines at the end of the graph, and extra outputs.
    tail: &'static str,
    outputs: &'static str,
    /// The lines that make k3 (\[B, H, D, S\]) from k2 (\[B, S, H, D\]).
    key: &'static str,
}

const PLAIN: Variant = Variant {
    split: "[0, 0, -1, 4]",
    mask: "2,1,1,5",
    tail: "",
    outputs: "",
    key: "  k3 = Transpose(k2) {perm=[0, 2, 3, 1]}",
};

/// The key path as torch.export's exporter writes it: heads merged into the batch for a
/// rank-3 transpose, split back with the batch and head count read at run time.
const DYNAMO_KEY: &str = "  kt = Transpose(k2) {perm=[0, 2, 1, 3]}
  ksh = Shape(kt) {start=0}
  kbh = Slice(ksh, zero1, two1)
  ks = Slice(ksh, two1, three1)
  flat = Concat(minus1, ks, four1) {axis=0}
  k3f = Reshape(kt, flat)
  k3t = Transpose(k3f) {perm=[0, 2, 1]}
  back = Concat(kbh, four1, ks) {axis=0}
  k3 = Reshape(k3t, back)
  init zero1: i64[1] = [0]
  init two1: i64[1] = [2]
  init three1: i64[1] = [3]
  init four1: i64[1] = [4]
  init minus1: i64[1] = [-1]";

/// One self-attention as PyTorch exports it: 16 features, 4 heads of 4; value heads
/// `dead` have zero weights and bias 0.3 (their context is the constant 0.3).
fn attention(v: &Variant, dead: &[usize]) -> Model {
    attention_with(v, dead, &[])
}

/// [`attention`] whose value heads `weak` have their weights and bias scaled by 0.05.
fn attention_with(v: &Variant, dead: &[usize], weak: &[usize]) -> Model {
    let src = format!(
        "ir_version 8
opset ai.onnx 17
graph {{
  input x: f32[2,5,16]
  input mask: f32[{mask}]
  output y: f32[2,5,16]{outputs}
  init wq: f32[16,16] = random
  init bq: f32[16] = random
  init wk: f32[16,16] = random
  init bk: f32[16] = random
  init wv: f32[16,16] = random
  init bv: f32[16] = random
  init wo: f32[16,16] = random
  init bo: f32[16] = random
  init split: i64[4] = {split}
  init merge: i64[3] = [0, 0, -1]
  init scale: f32[] = [0.5]
  q0 = MatMul(x, wq) @q
  q1 = Add(q0, bq)
  q2 = Reshape(q1, split)
  q3 = Transpose(q2) {{perm=[0, 2, 1, 3]}}
  k0 = MatMul(x, wk) @k
  k1 = Add(k0, bk)
  k2 = Reshape(k1, split)
{key}
  v0 = MatMul(x, wv) @v
  v1 = Add(v0, bv)
  v2 = Reshape(v1, split)
  v3 = Transpose(v2) {{perm=[0, 2, 1, 3]}}
  s0 = MatMul(q3, k3)
  s1 = Mul(s0, scale)
  s2 = Add(s1, mask)
  p = Softmax(s2) {{axis=-1}}
  c0 = MatMul(p, v3)
  c1 = Transpose(c0) {{perm=[0, 2, 1, 3]}}
  c2 = Reshape(c1, merge)
  o0 = MatMul(c2, wo) @o
  o1 = Add(o0, bo)
  y = Add(o1, x){tail}
}}
",
        mask = v.mask,
        outputs = v.outputs,
        split = v.split,
        tail = v.tail,
        key = v.key,
    );
    let mut m = parse_model(&src).unwrap();
    let g = &mut m.graph;
    let (wv, bv) = (g.find("wv").unwrap(), g.find("bv").unwrap());
    let mut w = g.constant(wv).unwrap().to_f32_vec().unwrap();
    let mut b = g.constant(bv).unwrap().to_f32_vec().unwrap();
    for &h in dead {
        for row in 0..16 {
            w[row * 16 + h * 4..row * 16 + h * 4 + 4].fill(0.0);
        }
        b[h * 4..h * 4 + 4].fill(0.3);
    }
    for &h in weak {
        for row in 0..16 {
            w[row * 16 + h * 4..row * 16 + h * 4 + 4]
                .iter_mut()
                .for_each(|x| *x *= 0.05);
        }
        b[h * 4..h * 4 + 4].iter_mut().for_each(|x| *x *= 0.05);
    }
    g.set_initializer(wv, Tensor::from_f32(vec![16, 16], &w));
    g.set_initializer(bv, Tensor::from_f32(vec![16], &b));
    m
}

fn run_on(original: &Model, budget: ErrorBudget) -> (Model, PruneReport) {
    prune_on(original, &options(&[Kind::Heads], budget), 64)
}

fn line<'a>(report: &'a PruneReport, site: &str) -> &'a whittle_compress::prune::GroupReport {
    report
        .groups
        .iter()
        .find(|g| g.site == site)
        .unwrap_or_else(|| panic!("no report line for {site}: {report:?}"))
}

#[test]
fn dead_heads_are_removed_exactly() {
    let original = attention(&PLAIN, &[1, 3]);
    let (model, report) = run_on(&original, ErrorBudget::Exact);
    let l = line(&report, "q");
    assert_eq!((l.kept, l.total), (2, 4), "{report:?}");
    assert_eq!(l.consumer, "o");
    let (diff, _) = max_diff(&original, &model);
    assert!(diff < 1e-4, "outputs moved by {diff}");
    let text = print_model(&model, &PrintOptions::default());
    // q, k and v keep 8 columns (and bias entries); o reads 8 rows.
    assert_eq!(text.matches("f32[16,8]").count(), 3, "{text}");
    assert_eq!(text.matches("f32[8] =").count(), 3, "{text}");
    assert!(text.contains("f32[8,16]"), "{text}");
}

#[test]
fn a_spelled_out_head_count_is_rewritten() {
    let v = Variant {
        split: "[2, 5, 4, 4]",
        ..PLAIN
    };
    let original = attention(&v, &[0, 2]);
    let (model, report) = run_on(&original, ErrorBudget::Exact);
    assert_eq!(line(&report, "q").kept, 2, "{report:?}");
    let text = print_model(&model, &PrintOptions::default());
    assert!(text.contains("= [2, 5, 2, 4]"), "{text}");
    assert!(max_diff(&original, &model).0 < 1e-4);
}

#[test]
fn the_dynamo_key_path_follows_a_pruning() {
    let v = Variant {
        key: DYNAMO_KEY,
        ..PLAIN
    };
    let original = attention(&v, &[0, 3]);
    let (model, report) = run_on(&original, ErrorBudget::Exact);
    assert_eq!(line(&report, "q").kept, 2, "{report:?}");
    let (diff, _) = max_diff(&original, &model);
    assert!(diff < 1e-4, "outputs moved by {diff}");
}

#[test]
fn live_heads_stay_under_an_exact_budget() {
    let original = attention(&PLAIN, &[]);
    let (model, report) = run_on(&original, ErrorBudget::Exact);
    assert_eq!(line(&report, "q").kept, 4, "{report:?}");
    assert_eq!(max_diff(&original, &model).0, 0.0);
}

#[test]
fn heads_within_a_cosine_budget() {
    // Two weak heads: heads of 4 entries are kept in pairs (8 columns, a SIMD width).
    let original = attention_with(&PLAIN, &[], &[1, 2]);
    let (model, report) = run_on(&original, ErrorBudget::Cosine(0.99));
    let l = line(&report, "q");
    assert!(l.kept < 4, "nothing pruned at cosine 0.99: {report:?}");
    let score = report.score.as_ref().unwrap();
    assert!(score.cosine >= 0.99, "budget missed on the data: {score:?}");
    // 64 sets: refits on the even ones, the budget judged on the odd ones.
    assert!(
        report
            .data
            .ends_with("refits fit on 32 sets, the budget judged on the other 32"),
        "{}",
        report.data
    );
    let (_, cos) = max_diff(&original, &model);
    assert!(cos >= 0.98, "cosine on fresh inputs {cos}");
}

/// Guards: each attention is left alone with the reason, and the model is unchanged.
#[test]
fn attentions_that_mix_heads_are_left_alone() {
    let cases = [
        (
            Variant {
                mask: "2,4,5,5",
                ..PLAIN
            },
            "'mask' differs per head",
        ),
        (
            Variant {
                outputs: "\n  output p: f32[2,4,5,5]",
                ..PLAIN
            },
            "'p' is a graph output",
        ),
        (
            // The head count read back at run time.
            Variant {
                tail: "\n  sh = Shape(q3)\n  hc = Gather(sh, one)\n  z = Cast(hc) {to=1}",
                outputs: "\n  output z: f32[1]\n  init one: i64[1] = [1]",
                ..PLAIN
            },
            "reads the head count at run time",
        ),
    ];
    for (v, want) in &cases {
        let original = attention(v, &[1, 3]);
        let (model, report) = run_on(&original, ErrorBudget::Exact);
        let l = line(&report, "q");
        assert!(l.why.contains(want), "want '{want}': {report:?}");
        assert_eq!(max_diff(&original, &model).0, 0.0);
    }
}

#[test]
fn a_softmax_across_heads_is_left_alone() {
    let original = attention(&PLAIN, &[1, 3]);
    let mut m = original.clone();
    let p = m.graph.find("p").unwrap();
    let n = m.graph.value(p).producer().unwrap().0;
    m.graph
        .node_mut(n)
        .set_attr(whittle_ir::Attribute::int("axis", 1));
    let (pruned, report) = run_on(&m, ErrorBudget::Exact);
    assert!(
        line(&report, "q")
            .why
            .contains("normalizes across the heads"),
        "{report:?}"
    );
    assert_eq!(max_diff(&m, &pruned).0, 0.0);
}

#[test]
fn a_computed_head_count_is_not_trusted() {
    // The split reads its head count from the projection's input width (16 / 4), which
    // would still say 4 after pruning.
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,5,16]
  output y: f32[2,5,16]
  init wq: f32[16,16] = random
  init wk: f32[16,16] = random
  init wv: f32[16,16] = random
  init wo: f32[16,16] = random
  init two: i64[1] = [2]
  init four: i64[1] = [4]
  init lead: i64[2] = [0, 0]
  init merge: i64[3] = [0, 0, -1]
  sh = Shape(x)
  width = Gather(sh, two)
  heads = Div(width, four)
  split = Concat(lead, heads, four) {axis=0}
  q0 = MatMul(x, wq) @q
  q2 = Reshape(q0, split)
  q3 = Transpose(q2) {perm=[0, 2, 1, 3]}
  k0 = MatMul(x, wk) @k
  k2 = Reshape(k0, split)
  k3 = Transpose(k2) {perm=[0, 2, 3, 1]}
  v0 = MatMul(x, wv) @v
  v2 = Reshape(v0, split)
  v3 = Transpose(v2) {perm=[0, 2, 1, 3]}
  s0 = MatMul(q3, k3)
  p = Softmax(s0) {axis=-1}
  c0 = MatMul(p, v3)
  c1 = Transpose(c0) {perm=[0, 2, 1, 3]}
  c2 = Reshape(c1, merge)
  y = MatMul(c2, wo) @o
}
";
    let original = parse_model(src).unwrap();
    let (model, report) = run_on(&original, ErrorBudget::Tol(1.0));
    assert!(
        line(&report, "q")
            .why
            .contains("does not spell out the head split"),
        "{report:?}"
    );
    assert_eq!(max_diff(&original, &model).0, 0.0);
}

/// A SwiGLU FFN: `down(silu(gate(x)) · up(x))`. Gate and up meet element-wise, so their
/// columns are neurons pruned together (kind ffn); neurons whose gate weights are zero
/// output silu(0) · up = 0 and go exactly.
#[test]
fn gated_ffn_neurons_are_pruned_together() {
    let src = "ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,5,16]
  output y: f32[2,5,16]
  init wg: f32[16,32] = random
  init wu: f32[16,32] = random
  init wd: f32[32,16] = random
  g = MatMul(x, wg) @gate
  s = Sigmoid(g)
  a = Mul(g, s)
  u = MatMul(x, wu) @up
  h = Mul(a, u)
  y = MatMul(h, wd) @down
}
";
    let mut original = parse_model(src).unwrap();
    let gv = original.graph.find("wg").unwrap();
    let mut w = original.graph.constant(gv).unwrap().to_f32_vec().unwrap();
    for row in 0..16 {
        for c in [3, 7, 8, 20] {
            w[row * 32 + c] = 0.0;
        }
    }
    original
        .graph
        .set_initializer(gv, Tensor::from_f32(vec![16, 32], &w));
    let (model, report) = prune_on(&original, &options(&[Kind::Ffn], ErrorBudget::Exact), 64);
    let l = line(&report, "gate");
    assert_eq!(
        (l.kind, l.kept, l.total),
        (Some(Kind::Ffn), 28, 32),
        "{report:?}"
    );
    assert!(max_diff(&original, &model).0 < 1e-4);
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(text.matches("f32[16,28]").count(), 2, "{text}");
    assert!(text.contains("f32[28,16]"), "{text}");
    // --prune heads alone does not take it.
    let (_, r2) = prune_on(&original, &options(&[Kind::Heads], ErrorBudget::Exact), 64);
    assert!(r2.groups.is_empty(), "{r2:?}");
}
