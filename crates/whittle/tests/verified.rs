//! Verified optimization: a rewrite that changes the outputs is found by bisection,
//! rolled back, and the rest of the optimization still happens.

use whittle::verified::{LosslessCheck, VerifyError, optimize_verified};
use whittle_eval::{InputSpec, Tolerance, random_inputs};
use whittle_ir::{Graph, NodeId};
use whittle_onnx::read_model;
use whittle_passes::cleanup::{DeadCode, Identity};
use whittle_passes::{PassCx, PassSettings, Patch, Pipeline, Rule, RuleCx, RuleSet};
use whittle_testkit::fixture;

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

/// `optimize_verified` of `original` with `pipeline`, checked in tract on `sets` at the
/// default tolerance.
fn verify_with(
    original: &whittle_ir::Model,
    pipeline: &Pipeline,
    sets: &[Vec<whittle_ir::Tensor>],
    strict: bool,
) -> Result<
    (
        whittle_ir::Model,
        Vec<whittle_passes::PassStat>,
        whittle::Verification,
    ),
    VerifyError,
> {
    let check = LosslessCheck {
        runtime: &whittle_eval::Runtime::Tract,
        reference: None,
        sets,
        tolerance: &Tolerance::default(),
        strict,
    };
    optimize_verified(original, original, pipeline, &cx(), check, &mut |_, _| {})
}

/// The node the broken rule breaks: BERT's embedding sum.
const TARGET: &str = "/m/embeddings/Add_1";

/// A deliberately wrong rule: flips the sign of one operand (Add becomes Sub) at TARGET.
struct FlipSign;

impl Rule for FlipSign {
    fn name(&self) -> &'static str {
        "flip-sign"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let node = g.node(n);
        if node.op() != "Add" || node.name.as_deref() != Some(TARGET) {
            return None;
        }
        Some(Box::new(move |g: &mut Graph| {
            g.node_mut(n).op_type = Some("Sub".into());
            Ok(())
        }))
    }
}

fn pipeline() -> Pipeline {
    Pipeline::from_passes(vec![
        Box::new(Identity),
        Box::new(RuleSet {
            name: "broken",
            description: "test only",
            rules: vec![Box::new(FlipSign)],
        }),
        Box::new(DeadCode),
    ])
}

fn inputs(g: &Graph) -> Vec<Vec<whittle_ir::Tensor>> {
    (0..2)
        .map(|seed| {
            let spec = InputSpec {
                seed,
                dims: vec![("batch".into(), 1), ("seq".into(), 8)],
                int_high: 1000,
                ..Default::default()
            };
            random_inputs(g, &spec).unwrap()
        })
        .collect()
}

#[test]
fn a_sign_flip_is_bisected_rolled_back_and_the_rest_kept() {
    // 19 Identity removals come first, then the broken rewrite, then dead code.
    let original = read_model(&fixture("bert_tiny.ts.onnx")).unwrap();
    let sets = inputs(&original.graph);
    let (model, _, v) = verify_with(&original, &pipeline(), &sets, false).unwrap();
    assert_eq!(v.rolled_back.len(), 1, "{:?}", v.rolled_back);
    let (pass, rule, site, k) = &v.rolled_back[0];
    assert_eq!(
        (pass.as_str(), rule.as_str(), site.as_str()),
        ("broken", "flip-sign", TARGET)
    );
    assert_eq!(*k, 20, "the 20th rewrite is the broken one");
    assert!(v.runs > 3, "bisection probes: {} runs", v.runs);
    assert!(v.diffs.iter().flatten().all(|d| d.ok && d.max_abs == 0.0));
    let g = &model.graph;
    let target = g
        .node_ids()
        .find(|n| g.node(*n).name.as_deref() == Some(TARGET))
        .unwrap();
    assert_eq!(g.node(target).op(), "Add", "rolled back");
    assert!(
        !g.node_ids().any(|n| g.node(n).op() == "Identity"),
        "the good rewrites stay"
    );
}

#[test]
fn strict_mode_fails_instead_of_rolling_back() {
    let original = read_model(&fixture("bert_tiny.ts.onnx")).unwrap();
    let sets = inputs(&original.graph);
    let err = verify_with(&original, &pipeline(), &sets, true).unwrap_err();
    assert!(matches!(err, VerifyError::Strict(_)), "{err}");
    assert!(err.to_string().contains("last_hidden_state"), "{err}");
}

#[test]
fn a_correct_pipeline_verifies_in_one_run() {
    let original = read_model(&fixture("bert_tiny.ts.onnx")).unwrap();
    let sets: Vec<_> = (0..2)
        .map(|seed| {
            random_inputs(
                &original.graph,
                &InputSpec {
                    seed,
                    dims: vec![("batch".into(), 1), ("seq".into(), 8)],
                    int_high: 1000,
                    ..Default::default()
                },
            )
            .unwrap()
        })
        .collect();
    let (model, _, v) = verify_with(
        &original,
        &Pipeline::for_level(whittle_passes::Level::O2),
        &sets,
        false,
    )
    .unwrap();
    assert_eq!(v.runs, 1);
    assert!(v.rolled_back.is_empty());
    assert!(model.graph.node_count() < original.graph.node_count());
}
