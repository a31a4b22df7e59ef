//! The pipeline as a driver of passes: a failing pass leaves the model (and the journal)
//! as it was, a pass that breaks an IR invariant is named, and a rule that is off by
//! default runs only when enabled.

mod common;
use common::{cx, settings};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_ir::{Graph, IrError, NodeId};
use whittle_passes::rule::{Patch, Rule, RuleCx, RuleSet};
use whittle_passes::{Grant, Pass, PassCx, PassError, PassSettings, Pipeline};

const MODEL: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[4]
  output y: f32[4]
  a = Relu(x)
  b = Neg(a)
  y = Abs(b)
}
";

/// Removes the first node (logging it as a rewrite), then fails or not.
struct HalfDone {
    fail: bool,
}

impl Pass for HalfDone {
    fn name(&self) -> &'static str {
        "half-done"
    }
    fn description(&self) -> &'static str {
        "test pass"
    }
    fn run(&self, g: &mut Graph, _: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        let Some(n) = g.node_ids().next() else {
            return Ok(false);
        };
        assert_eq!(cx.grant("half-done", "drop", "first"), Grant::Yes);
        cx.journal.notes.push(("first".into(), "dropped".into()));
        g.remove_node(n);
        if self.fail {
            return Err(PassError::Ir {
                pass: "half-done",
                source: IrError::Invariant("gave up half-way".into()),
            });
        }
        Ok(true)
    }
}

fn listing(m: &whittle_ir::Model) -> String {
    print_model(m, &PrintOptions::default())
}

/// `m` as the pipeline sees it before the first pass: with inferred types.
fn annotated(m: &whittle_ir::Model) -> String {
    let mut m = m.clone();
    whittle_ir::infer::infer(&mut m, &Default::default()).unwrap();
    listing(&m)
}

#[test]
fn a_failing_pass_leaves_the_model_and_the_journal_as_they_were() {
    let original = parse_model(MODEL).unwrap();
    let mut model = original.clone();
    let mut cx = cx();
    let err = Pipeline::from_passes(vec![Box::new(HalfDone { fail: true })])
        .run(&mut model, &mut cx)
        .unwrap_err();
    assert!(err.to_string().contains("half-done"), "{err}");
    assert_eq!(listing(&model), annotated(&original));
    assert!(
        cx.journal.log.is_empty() && cx.journal.notes.is_empty(),
        "{:?}",
        cx.journal.log
    );
}

#[test]
fn a_pass_that_breaks_an_invariant_is_named_and_rolled_back() {
    // Removing Relu leaves Neg reading an undefined value: the verifier (debug builds,
    // so every test) names the pass, and the model is restored.
    let original = parse_model(MODEL).unwrap();
    let mut model = original.clone();
    let mut cx = cx();
    let err = Pipeline::from_passes(vec![Box::new(HalfDone { fail: false })])
        .run(&mut model, &mut cx)
        .unwrap_err();
    assert!(err.to_string().contains("pass 'half-done'"), "{err}");
    assert_eq!(listing(&model), annotated(&original));
}

/// Removes a `Neg` feeding `Abs` (|−a| = |a|): a rule that is off by default.
struct DropNegUnderAbs;

impl Rule for DropNegUnderAbs {
    fn name(&self) -> &'static str {
        "drop-neg"
    }
    fn default_on(&self) -> bool {
        false
    }
    fn find(&self, g: &Graph, n: NodeId, _: &RuleCx) -> Option<Patch> {
        let node = g.node(n);
        let x = node.input(0)?;
        let (p, _) = g.value(x).producer()?;
        if node.op() != "Abs" || g.node(p).op() != "Neg" {
            return None;
        }
        let a = g.node(p).input(0)?;
        Some(Box::new(move |g: &mut Graph| {
            whittle_passes::edit::bypass(g, p, x, a)
        }))
    }
}

/// The model's op types after a run of `DropNegUnderAbs` with `enable`.
fn ops_after(enable: &[&str]) -> Vec<String> {
    let mut model = parse_model(MODEL).unwrap();
    let mut cx = PassCx::new(PassSettings {
        enable: enable.iter().map(|s| s.to_string()).collect(),
        ..settings()
    });
    let set = RuleSet {
        name: "test-rules",
        description: "test",
        rules: vec![Box::new(DropNegUnderAbs)],
    };
    Pipeline::from_passes(vec![Box::new(set)])
        .run(&mut model, &mut cx)
        .unwrap();
    let g = &model.graph;
    let order = g.nodes_in_order().unwrap();
    order.iter().map(|n| g.node(*n).op().to_string()).collect()
}

#[test]
fn a_rule_off_by_default_runs_only_when_enabled() {
    assert_eq!(ops_after(&[]), ["Relu", "Neg", "Abs"]);
    assert_eq!(ops_after(&["other-rule"]), ["Relu", "Neg", "Abs"]);
    assert_eq!(ops_after(&["drop-neg"]), ["Relu", "Abs"]);
}

#[test]
fn folding_without_an_evaluator_is_an_error_not_a_pass_that_does_nothing() {
    let src = "
opset ai.onnx 17
graph {
  input x: f32[2]
  output y: f32[2]
  init a: f32[2] = [1.0, 2.0]
  b = Neg(a)
  y = Add(x, b)
}
";
    let original = parse_model(src).unwrap();
    let mut model = original.clone();
    let err = Pipeline::for_level(whittle_passes::Level::O1)
        .run(&mut model, &mut PassCx::default())
        .unwrap_err();
    assert!(matches!(err, PassError::NoEvaluator { .. }), "{err}");
    assert!(err.to_string().contains("fold-constants"), "{err}");
    assert_eq!(
        listing(&model),
        annotated(&original),
        "the model is as it was"
    );
    let mut folded = original.clone();
    Pipeline::for_level(whittle_passes::Level::O1)
        .run(&mut folded, &mut cx())
        .unwrap();
    assert!(!listing(&folded).contains("Neg"), "{}", listing(&folded));
}
