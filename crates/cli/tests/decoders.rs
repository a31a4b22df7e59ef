//! Decoder-LLM exports (fixtures/gen/make_decoders.py: Llama and Qwen2, dynamo and
//! TorchScript, one step with a KV cache): -O2 keeps logits and the present cache equal
//! in tract, fed a past of random keys and values, and removes what the exporters add.

mod common;
use common::{s, whittle};

use std::collections::BTreeMap;
use whittle_testkit::fixtures_dir;

/// What `optimize --verify` did to a decoder fixture.
struct Verified {
    max_abs: f64,
    before: usize,
    after: usize,
    /// Nodes of each op type in the output.
    ops: BTreeMap<String, usize>,
}

/// Runs `optimize --verify` with `extra` flags (tract, three random feeds with
/// past_key/past_value of length 4).
fn verified(name: &str, extra: &[&str]) -> Verified {
    let model = fixtures_dir().join(name);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o2.onnx");
    let mut args = vec!["optimize", s(&model), "-o", s(&out), "--verify"];
    args.extend_from_slice(extra);
    let o = whittle(&args);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("verified against the original"))
        .unwrap_or_else(|| panic!("{name}: no verification line in\n{text}"));
    assert!(line.contains("past_key_0[1, 2, 4, 16]"), "{line}");
    let max_abs: f64 = line
        .split("max abs ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}: no max abs in {line}"));
    let before = whittle_onnx::read_model(&model).unwrap().graph.node_count();
    let m = whittle_onnx::read_model(&out).unwrap();
    let mut ops = BTreeMap::new();
    for n in m.graph.node_ids() {
        *ops.entry(m.graph.node(n).op().to_string()).or_insert(0) += 1;
    }
    Verified {
        max_abs,
        before,
        after: m.graph.node_count(),
        ops,
    }
}

const STEPS: [&str; 4] = [
    "llama_step.dyn.onnx",
    "llama_step.ts.onnx",
    "qwen2_step.dyn.onnx",
    "qwen2_step.ts.onnx",
];

#[test]
fn kv_cache_steps_stay_exact_in_tract() {
    for name in STEPS {
        let v = verified(name, &[]);
        assert!(v.max_abs <= 1e-6, "{name}: max abs {}", v.max_abs);
        assert!(
            v.after < v.before,
            "{name}: {} -> {} nodes",
            v.before,
            v.after
        );
    }
}

#[test]
fn opset_24_fuses_norms_rotary_and_silu_and_stays_exact_in_tract() {
    // Two layers: 2 RMSNorms each plus the final one; rotary on q and k; one SiLU each.
    for name in STEPS {
        let v = verified(name, &["--opset", "24"]);
        assert!(v.max_abs <= 1e-5, "{name}: max abs {}", v.max_abs);
        let n = |op: &str| v.ops.get(op).copied().unwrap_or(0);
        assert_eq!(
            (n("RMSNormalization"), n("RotaryEmbedding"), n("Swish")),
            (5, 4, 2),
            "{name}: {:?}",
            v.ops
        );
        assert_eq!((n("Neg"), n("Sigmoid")), (0, 0), "{name}: {:?}", v.ops);
        assert_eq!(n("Attention"), 0, "{name}: attention is off by default");
    }
}

#[test]
fn enabled_attention_fusion_takes_the_cache_and_stays_exact_in_tract() {
    // The dynamo steps: one Attention per layer, holding the cache Concats and the
    // grouped-query head repetition. TorchScript's steps mask with -inf behind a NaN
    // guard, which Attention does not have: they keep their Softmax.
    for name in STEPS {
        let v = verified(name, &["--opset", "24", "--enable", "rule:attention"]);
        assert!(v.max_abs <= 1e-5, "{name}: max abs {}", v.max_abs);
        let n = |op: &str| v.ops.get(op).copied().unwrap_or(0);
        let dynamo = name.contains(".dyn.");
        let want = if dynamo { (2, 0, 0) } else { (0, 2, 2) };
        assert_eq!(
            (n("Attention"), n("Softmax"), n("IsNaN")),
            want,
            "{name}: {:?}",
            v.ops
        );
        if dynamo {
            // Left: the mask's batch Expand and the rotary caches'; the four that
            // repeated kv heads are gone.
            assert_eq!(n("Expand"), 3, "{name}: {:?}", v.ops);
        }
    }
}

#[test]
fn torchscript_expand_guards_fold_away() {
    // TorchScript guards each Expand with Where(Equal(shape, -1), 1, shape); the dims are
    // never -1, so only the causal mask's Equal is left (5 before).
    let model = fixtures_dir().join("llama_step.ts.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o2.onnx");
    let o = whittle(&["optimize", s(&model), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = whittle_onnx::read_model(&out).unwrap();
    let g = &m.graph;
    let count = |op: &str| g.node_ids().filter(|n| g.node(*n).op() == op).count();
    assert_eq!(count("Equal"), 1);
    let (before, after) = (
        whittle_onnx::read_model(&model).unwrap().graph.node_count(),
        g.node_count(),
    );
    assert!(after * 3 < before, "{before} -> {after}");
}
