//! `whittle optimize --certificate` and `whittle certify`: every fixture's certificate
//! replays and leaves no rewrite uncertified without a reason; lossy steps replay and
//! report what they measured; wrong rewrites injected into optimized
//! models and their certificates (a wrong perm, a wrong BatchNorm constant, a dropped
//! side condition, a swapped input) are each rejected with the rewrite named.

mod common;
use common::{s, whittle};

use serde_json::Value;
use std::path::{Path, PathBuf};
use whittle::certificate::file_sha256;
use whittle_ir::text::parse_model;
use whittle_onnx::{ExportOptions, read_model, save_model};

/// Optimizes `model` into `dir` with a certificate; returns (optimized, certificate).
fn optimize(model: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (out, cert) = (dir.join("o.onnx"), dir.join("o.cert"));
    let o = whittle(&[
        "-q",
        "optimize",
        s(model),
        "-o",
        s(&out),
        "--certificate",
        s(&cert),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (out, cert)
}

/// `whittle certify` as JSON: (exit code, report).
fn certify(original: &Path, optimized: &Path, cert: &Path) -> (Option<i32>, Value) {
    let o = whittle(&[
        "certify",
        s(original),
        s(optimized),
        s(cert),
        "--format",
        "json",
    ]);
    let report = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), report)
}

/// Counts of each verdict in a report.
fn verdicts(r: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for v in r["verdicts"].as_array().into_iter().flatten() {
        *m.entry(v[3]["verdict"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    m
}

/// Writes a text-form model as ONNX.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let m = parse_model(text).expect("test model parses");
    save_model(&m, &path, &ExportOptions::default()).expect("test model saves");
    path
}

#[test]
fn every_fixture_certificate_replays_with_nothing_left_uncertified() {
    let dir = tempfile::tempdir().unwrap();
    let mut rewrites = 0;
    for model in whittle_testkit::tract_fixtures() {
        let sub = dir.path().join(model.file_name().unwrap());
        std::fs::create_dir(&sub).unwrap();
        let (out, cert) = optimize(&model, &sub);
        let (code, r) = certify(&model, &out, &cert);
        assert_eq!(code, Some(0), "{}: {r}", model.display());
        assert_eq!(r["replayed"], true, "{}", model.display());
        let v = verdicts(&r);
        // tract folded the constants, so their regions are not judged by it again; the
        // rest must all be proved or checked.
        let open: Vec<&Value> = r["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x[3]["verdict"] == "not-certified")
            .filter(|x| {
                !x[3]["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("tract folded")
            })
            .collect();
        assert!(open.is_empty(), "{}: {open:?}", model.display());
        rewrites += v.values().sum::<usize>();
    }
    assert!(
        rewrites > 1000,
        "the fixtures' certificates hold {rewrites} rewrites"
    );
}

/// A model, its optimized form and certificate, made from `text` in `dir`.
fn certified(dir: &Path, text: &str) -> (PathBuf, PathBuf, PathBuf) {
    let model = write(dir, "m.onnx", text);
    let (out, cert) = optimize(&model, dir);
    let (code, r) = certify(&model, &out, &cert);
    assert_eq!(code, Some(0), "unmodified: {r}");
    (model, out, cert)
}

/// Rewrites the optimized model with `edit`, and the certificate with `edit_cert`
/// (then its digest of the optimized file, as a forger would), and checks again.
fn tamper(
    (model, out, cert): &(PathBuf, PathBuf, PathBuf),
    edit: impl FnOnce(&mut whittle_ir::Model),
    edit_cert: impl FnOnce(&mut Value),
) -> (Option<i32>, Value) {
    let mut m = read_model(out).unwrap();
    edit(&mut m);
    save_model(&m, out, &ExportOptions::default()).unwrap();
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(cert).unwrap()).unwrap();
    edit_cert(&mut c);
    c["optimized"]["sha256"] = Value::String(file_sha256(out).unwrap());
    std::fs::write(cert, c.to_string()).unwrap();
    certify(model, out, cert)
}

/// The rewrite (by rule) a rejection names.
fn rejected_rule(r: &Value) -> String {
    r["rejected"]["rule"].as_str().unwrap_or("").to_string()
}

/// The node of `m` defining `name`.
fn producer(m: &whittle_ir::Model, name: &str) -> whittle_ir::NodeId {
    let g = &m.graph;
    let v = g.find(name).expect("value exists");
    g.value(v).producer().expect("a node defines it").0
}

/// The region of the first rewrite by `rule` in a certificate.
fn region<'a>(c: &'a mut Value, rule: &str) -> &'a mut Value {
    let rw = c["rewrites"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["rule"] == rule)
        .expect("the rule fired");
    &mut rw["region"]
}

/// The verdict (`[k, rule, site, verdict]`) of the first rewrite by `rule` in a report.
fn verdict_of<'a>(r: &'a Value, rule: &str) -> &'a Value {
    r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[1] == rule)
        .expect("the rule fired")
}

/// Makes a certificate claim `t` for the constants of `rule`'s region with `t`'s dims,
/// as a forger who wrote `t` would.
fn claim(c: &mut Value, rule: &str, t: &whittle_ir::Tensor) {
    let digest = whittle_certify::record::tensor_digest(t);
    for rec in region(c, rule)["inits_added"].as_array_mut().unwrap() {
        if rec["dims"] == serde_json::json!(t.dims) {
            rec["sha256"] = Value::String(digest.clone());
        }
    }
}

const TRANSPOSES: &str = "graph {
  input x: f32[2,3,4,5]
  output y: f32[2,4,5,3]
  t = Transpose(x) {perm=[0, 2, 1, 3]}
  y = Transpose(t) {perm=[0, 1, 3, 2]}
}";

#[test]
fn a_wrong_perm_is_rejected_by_the_composition_lemma() {
    let dir = tempfile::tempdir().unwrap();
    let made = certified(dir.path(), TRANSPOSES);
    // Transpose(Transpose(x, [0,2,1,3]), [0,1,3,2]) is Transpose(x, [0,2,3,1]); claim
    // [0,3,2,1] in the model and the certificate alike.
    let wrong = whittle_ir::Attribute::ints("perm", vec![0, 3, 2, 1]);
    let (code, r) = tamper(
        &made,
        |m| {
            let n = producer(m, "y");
            m.graph.node_mut(n).set_attr(wrong.clone());
        },
        |c| {
            let added = &mut region(c, "transpose-chain")["added"][0]["attrs"];
            *added = serde_json::json!(["perm=ints:0,3,2,1"]);
        },
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(rejected_rule(&r), "transpose-chain", "{r}");
    assert!(
        r["rejected"]["why"]
            .as_str()
            .unwrap()
            .contains("perm=[0, 2, 3, 1]"),
        "{r}"
    );
}

#[test]
fn a_model_changed_behind_its_certificate_is_rejected_at_the_rewrite_that_made_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let made = certified(dir.path(), TRANSPOSES);
    let wrong = whittle_ir::Attribute::ints("perm", vec![0, 3, 2, 1]);
    let (code, r) = tamper(
        &made,
        |m| {
            let n = producer(m, "y");
            m.graph.node_mut(n).set_attr(wrong.clone());
        },
        |_| {},
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(rejected_rule(&r), "transpose-chain", "{r}");
    assert!(
        r["rejected"]["why"]
            .as_str()
            .unwrap()
            .contains("not the original with the logged rewrites"),
        "{r}"
    );
}

const CONV_BN: &str = "graph {
  input x: f32[1,2,5,5]
  output y: f32[1,3,5,5]
  init w: f32[3,2,3,3] = [0.1, -0.2, 0.3, 0.05, 0.2, -0.1, 0.4, 0.1, -0.3, 0.2, 0.1, 0.0, -0.1, 0.3, 0.2, 0.1, -0.2, 0.1, 0.3, -0.1, 0.2, 0.1, 0.0, 0.2, -0.3, 0.1, 0.2, 0.1, 0.2, -0.1, 0.0, 0.3, 0.1, -0.2, 0.1, 0.2, 0.2, 0.1, -0.1, 0.3, 0.0, 0.1, 0.2, -0.2, 0.1, 0.1, 0.3, -0.1, 0.2, 0.0, 0.1, -0.1, 0.2, 0.3]
  init gamma: f32[3] = [1.5, 0.5, 2.0]
  init beta: f32[3] = [0.1, -0.2, 0.3]
  init mean: f32[3] = [0.2, -0.1, 0.05]
  init var: f32[3] = [1.2, 0.8, 0.5]
  c = Conv(x, w) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
  y = BatchNormalization(c, gamma, beta, mean, var) {epsilon=0.00001}
}";

#[test]
fn a_folded_batchnorm_is_proved_within_an_fp32_bound_and_a_wrong_constant_refuted() {
    let dir = tempfile::tempdir().unwrap();
    let made = certified(dir.path(), CONV_BN);
    let (_, r) = certify(&made.0, &made.1, &made.2);
    let bn = verdict_of(&r, "conv-batchnorm");
    assert_eq!(bn[3]["verdict"], "proved-within-bound", "{r}");
    let mut bias_name = String::new();
    let (code, r) = tamper(
        &made,
        |m| {
            let conv = producer(m, "y");
            let b = m
                .graph
                .node(conv)
                .input(2)
                .expect("the fused Conv has a bias");
            bias_name = m.graph.value(b).name().to_string();
            let t = whittle_ir::Tensor::from_f32(vec![3], &[9.0, 9.0, 9.0]);
            m.graph.set_initializer(b, t);
        },
        |c| {
            // The forger's certificate claims the bias it wrote.
            let t = whittle_ir::Tensor::from_f32(vec![3], &[9.0, 9.0, 9.0]);
            claim(c, "conv-batchnorm", &t);
        },
    );
    assert_eq!(code, Some(1), "{r} ({bias_name})");
    assert_eq!(rejected_rule(&r), "conv-batchnorm", "{r}");
    // The checker recomputes (b − μ)·s + β in f64 from the original's tensors.
    assert!(
        r["rejected"]["why"]
            .as_str()
            .unwrap()
            .contains("the folded constants are"),
        "{r}"
    );
}

const DEAD: &str = "graph {
  input x: f32[4]
  output y: f32[4]
  a = Relu(x)
  b = Neg(x)
  y = Add(a, a)
}";

#[test]
fn a_dropped_side_condition_is_rejected_by_the_lemma() {
    // Dead code may remove a node only if nothing reads it: a certificate that removes
    // the live Relu (and a model without it, its reader now reading x) is refuted.
    let dir = tempfile::tempdir().unwrap();
    let made = certified(dir.path(), DEAD);
    let (code, r) = tamper(
        &made,
        |m| {
            let relu = producer(m, "a");
            let add = producer(m, "y");
            let x = m.graph.find("x").unwrap();
            m.graph.set_input(add, 0, Some(x));
            m.graph.set_input(add, 1, Some(x));
            m.graph.remove_node(relu);
        },
        |c| {
            let dead = region(c, "dead-node");
            dead["removed"] = serde_json::json!([
                {"op": "|Neg", "inputs": ["x"], "outputs": ["b"]},
                {"op": "|Relu", "inputs": ["x"], "outputs": ["a"]}
            ]);
        },
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(rejected_rule(&r), "dead-node", "{r}");
    assert!(
        r["rejected"]["why"]
            .as_str()
            .unwrap()
            .contains("'a' is still read"),
        "{r}"
    );
}

const GEMM: &str = "graph {
  input x: f32[3,3]
  output y: f32[3,3]
  init w: f32[3,3] = [1.0, 2.0, 0.5, -1.0, 0.25, 3.0, 0.0, 1.5, -2.0]
  init b: f32[3] = [0.1, 0.2, 0.3]
  m = MatMul(x, w)
  y = Add(m, b)
}";

#[test]
fn a_swapped_input_is_rejected_by_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let made = certified(dir.path(), GEMM);
    let (code, r) = tamper(
        &made,
        |m| {
            let gemm = producer(m, "y");
            let (a, b) = (
                m.graph.node(gemm).input(0).unwrap(),
                m.graph.node(gemm).input(1).unwrap(),
            );
            m.graph.set_input(gemm, 0, Some(b));
            m.graph.set_input(gemm, 1, Some(a));
        },
        |c| {
            let added = &mut region(c, "matmul-add-to-gemm")["added"][0]["inputs"];
            let arr = added.as_array_mut().unwrap();
            arr.swap(0, 1);
        },
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(rejected_rule(&r), "matmul-add-to-gemm", "{r}");
}

#[test]
fn a_certificate_for_other_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, out, cert) = certified(dir.path(), GEMM);
    let other = write(dir.path(), "other.onnx", DEAD);
    let (code, r) = certify(&other, &out, &cert);
    assert_eq!(code, Some(1), "{r}");
    assert!(
        r["rejected"]["why"]
            .as_str()
            .unwrap()
            .contains("not the original model the certificate was written for"),
        "{r}"
    );
    let _ = model;
}

#[test]
fn without_a_certificate_unchanged_nodes_are_proved_and_the_rest_proved_or_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let model = whittle_testkit::fixture("squeezenet1_1.ts.onnx");
    let (out, _) = optimize(&model, dir.path());
    let o = whittle(&["certify", s(&model), s(&out), "--format", "json"]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{r}");
    let v = r["verdicts"].as_array().unwrap();
    assert_eq!(v[0][3]["verdict"], "proved-exact", "{r}");
    assert!(
        v.len() > 1,
        "squeezenet's Identity nodes went: a changed region: {r}"
    );
    // Removing Identity nodes renames what their readers read: the region after hands
    // on the same terms as before, so symbolic evaluation proves it.
    for x in v.iter().skip(1) {
        assert_eq!(x[3]["verdict"], "proved-exact", "{r}");
        let lemma = x[3]["lemma"].as_str().unwrap_or("");
        assert!(lemma.contains("symbolic evaluation"), "{r}");
    }
}

#[test]
fn lossy_steps_are_outside_proof_and_say_what_they_measured() {
    let dir = tempfile::tempdir().unwrap();
    let model = whittle_testkit::fixture("mobile_block.ts.onnx");
    let (out, cert) = (dir.path().join("q.onnx"), dir.path().join("q.cert"));
    let o = whittle(&[
        "-q",
        "optimize",
        s(&model),
        "-o",
        s(&out),
        "--quantize",
        "int8-weights",
        "--certificate",
        s(&cert),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, r) = certify(&model, &out, &cert);
    assert_eq!(code, Some(0), "{r}");
    // The quantized weights' regions replay too: the model is exactly what was logged.
    assert_eq!(r["replayed"], true, "{r}");
    let v = verdicts(&r);
    assert!(v.get("proved-exact").copied().unwrap_or(0) > 0, "{r}");
    let lossy: Vec<&Value> = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x[3]["verdict"] == "lossy")
        .collect();
    assert!(!lossy.is_empty(), "{r}");
    for x in lossy {
        let measured = x[3]["measured"].as_str().unwrap();
        assert!(measured.contains("relative weight error"), "{r}");
    }
}

#[test]
fn the_html_page_lists_every_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let model = whittle_testkit::fixture("mobile_block.ts.onnx");
    let (out, cert) = optimize(&model, dir.path());
    let page = dir.path().join("c.html");
    let o = whittle(&["certify", s(&model), s(&out), s(&cert), "--html", s(&page)]);
    assert_eq!(o.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("The certificate holds."), "{html}");
    // One row per rewrite, after the header row.
    let (_, r) = certify(&model, &out, &cert);
    let rewrites = r["verdicts"].as_array().unwrap().len();
    assert!(rewrites > 0);
    assert_eq!(html.matches("<tr>").count(), 2 + 1 + rewrites, "{html}");
    assert!(
        !html.contains("http"),
        "the page refers to nothing on the network"
    );
}

const NESTED_IF: &str = "graph {
  input x: f32[2]
  input c: bool[]
  output y: f32[2]
  init yes: bool[] = [true]
  y = If(yes) {
    then_branch=graph th {
      output o: f32[2]
      o = If(c) {
        then_branch=graph t2 {
          output p: f32[2]
          k = Constant() {value=tensor f32[2] [1.0, 2.0]}
          p = Add(x, k)
        },
        else_branch=graph e2 {
          output q: f32[2]
          j = Constant() {value=tensor f32[2] [3.0, 4.0]}
          q = Mul(x, j)
        }
      }
    },
    else_branch=graph el {
      output o2: f32[2]
      o2 = Neg(x)
    }
  }
}";

#[test]
fn rewrites_inside_branches_replay_when_their_if_is_inlined_into_its_parent() {
    // The inner If's branches are rewritten in their own scope, then the outer If is
    // inlined and the inner one moves up to the main graph with its branches.
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.onnx", NESTED_IF);
    let (out, cert) = optimize(&model, dir.path());
    let (code, r) = certify(&model, &out, &cert);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["replayed"], true, "{r}");
    let rules: Vec<&str> = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"inline-constant-if"), "{r}");
    assert!(rules.contains(&"constant-to-initializer"), "{r}");
    // The rewrites inside the branches are judged on the replay's state, where their
    // graphs still are: none is left uncertified.
    let open: Vec<&Value> = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v[3]["verdict"] == "not-certified")
        .collect();
    assert!(open.is_empty(), "{open:?}");
}

const BRANCH_SHAPES: &str = "graph {
  input x: f32[2,3]
  input c: bool[]
  output y: i64[1]
  init zero: i64[1] = [0]
  y = If(c) {
    then_branch=graph th {
      output o: i64[1]
      s = Shape(x)
      b = Gather(s, zero) {axis=0}
      o = Identity(b)
    },
    else_branch=graph el {
      output o2: i64[1]
      o2 = Identity(zero)
    }
  }
}";

#[test]
fn shape_values_folded_inside_a_branch_are_proved_without_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.onnx", BRANCH_SHAPES);
    let (out, cert) = optimize(&model, dir.path());
    let o = whittle(&[
        "certify",
        s(&model),
        s(&out),
        s(&cert),
        "--no-evaluate",
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{r}");
    // Shape(x)[0] of the outer x [2, 3] is the constant [2] (and Shape(x) is [2, 3]).
    let folds: Vec<&Value> = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v[1] == "fold-shape-values")
        .collect();
    assert!(
        !folds.is_empty(),
        "the branch's shape values were folded: {r}"
    );
    for f in folds {
        assert_eq!(f[3]["verdict"], "proved-exact", "{r}");
        let lemma = f[3]["lemma"].as_str().unwrap();
        assert!(lemma.contains("symbolic evaluation"), "{r}");
    }
}

const CONVT_BN: &str = "graph {
  input x: f32[1,2,4,4]
  output y: f32[1,3,5,5]
  init w: f32[2,3,2,2] = [0.1, -0.2, 0.3, 0.05, 0.2, -0.1, 0.4, 0.1, -0.3, 0.2, 0.1, 0.0, -0.1, 0.3, 0.2, 0.1, -0.2, 0.1, 0.3, -0.1, 0.2, 0.1, 0.0, 0.2]
  init gamma: f32[3] = [1.5, 0.5, 2.0]
  init beta: f32[3] = [0.1, -0.2, 0.3]
  init mean: f32[3] = [0.2, -0.1, 0.05]
  init var: f32[3] = [1.2, 0.8, 0.5]
  c = ConvTranspose(x, w) {kernel_shape=[2, 2]}
  y = BatchNormalization(c, gamma, beta, mean, var) {epsilon=0.00001}
}";

#[test]
fn a_folded_batchnorm_after_a_transposed_conv_is_left_to_evaluation() {
    // Its weights are [C, M/g, k…]: the checker does not recompute that channel map, so
    // the fold is evaluated (and passes), not refused.
    let dir = tempfile::tempdir().unwrap();
    let (model, out, cert) = certified(dir.path(), CONVT_BN);
    let (code, r) = certify(&model, &out, &cert);
    assert_eq!(code, Some(0), "{r}");
    let bn = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[1] == "conv-batchnorm")
        .expect("the BatchNorm was folded");
    assert_eq!(bn[3]["verdict"], "checked-by-evaluation", "{r}");
}

#[test]
fn regions_fed_random_values_are_checked_without_running_the_whole_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = whittle_testkit::fixture("llama_step.dyn.onnx");
    let (out, cert) = optimize(&model, dir.path());
    let o = whittle(&[
        "certify",
        s(&model),
        s(&out),
        s(&cert),
        "--region-inputs",
        "random",
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{r}");
    let v = verdicts(&r);
    assert!(
        v.get("checked-by-evaluation").copied().unwrap_or(0) > 0,
        "{r}"
    );
}

const CONV_MUL_ADD: &str = "graph {
  input x: f32[1,2,5,5]
  output y: f32[1,3,5,5]
  init w: f32[3,2,1,1] = [0.1, -0.2, 0.3, 0.05, 0.2, -0.1]
  init b: f32[3] = [0.5, -0.5, 0.25]
  init s: f32[1,3,1,1] = [1.5, 0.5, 2.0]
  init c: f32[1,3,1,1] = [0.1, -0.2, 0.3]
  t = Conv(x, w, b) {kernel_shape=[1, 1]}
  u = Mul(t, s)
  y = Add(u, c)
}";

#[test]
fn per_channel_mul_and_add_folded_into_a_conv_are_proved_within_an_fp32_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (model, out, cert) = certified(dir.path(), CONV_MUL_ADD);
    let (code, r) = certify(&model, &out, &cert);
    assert_eq!(code, Some(0), "{r}");
    let folds: Vec<&Value> = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v[1] == "conv-add-mul")
        .collect();
    assert_eq!(folds.len(), 2, "the Mul and the Add both fold: {r}");
    for f in folds {
        assert_eq!(f[3]["verdict"], "proved-within-bound", "{r}");
    }
}

const SCALED_CONV: &str = "graph {
  input x: f32[1,2,4,4]
  output y: f32[1,2,4,4]
  init s: f32[] = [0.5]
  init w: f32[2,2,1,1] = [0.3, -0.7, 1.1, 0.25]
  init b: f32[2] = [0.1, -0.2]
  h = Mul(x, s)
  y = Conv(h, w, b) {kernel_shape=[1, 1]}
}";

#[test]
fn a_scale_folded_into_conv_weights_is_proved_and_a_wrong_weight_refuted() {
    let dir = tempfile::tempdir().unwrap();
    let made = certified(dir.path(), SCALED_CONV);
    let (_, r) = certify(&made.0, &made.1, &made.2);
    let v = verdict_of(&r, "conv-input-scale");
    assert_eq!(v[3]["verdict"], "proved-within-bound", "{r}");
    let wrong = || whittle_ir::Tensor::from_f32(vec![2, 2, 1, 1], &[0.15, -0.35, 0.55, 0.5]);
    let (code, r) = tamper(
        &made,
        |m| {
            let conv = producer(m, "y");
            let w = m.graph.node(conv).input(1).expect("the Conv has weights");
            m.graph.set_initializer(w, wrong());
        },
        |c| claim(c, "conv-input-scale", &wrong()),
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(rejected_rule(&r), "conv-input-scale", "{r}");
    assert!(
        r["rejected"]["why"]
            .as_str()
            .unwrap()
            .contains("ulp from W·s"),
        "{r}"
    );
}
