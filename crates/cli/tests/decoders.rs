//! Decoder-LLM exports (fixtures/gen/make_decoders.py: Llama and Qwen2, dynamo and
//! TorchScript, one step with a KV cache): -O2 keeps logits and the present cache equal
//! in tract, fed a past of random keys and values, and removes what the exporters add.

mod common;
use common::{s, whittle};

use whittle_testkit::fixtures_dir;

/// Runs `optimize --verify` (tract, three random feeds with past_key/past_value of
/// length 4) and returns (max abs difference, nodes before, nodes after).
fn verified(name: &str) -> (f64, usize, usize) {
    let model = fixtures_dir().join(name);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o2.onnx");
    let o = whittle(&["optimize", s(&model), "-o", s(&out), "--verify"]);
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
    let nodes = |p: &std::path::Path| whittle_onnx::read_model(p).unwrap().graph.node_count();
    (max_abs, nodes(&model), nodes(&out))
}

#[test]
fn kv_cache_steps_stay_exact_in_tract() {
    for name in [
        "llama_step.dyn.onnx",
        "llama_step.ts.onnx",
        "qwen2_step.dyn.onnx",
        "qwen2_step.ts.onnx",
    ] {
        let (max_abs, before, after) = verified(name);
        assert!(max_abs <= 1e-6, "{name}: max abs {max_abs}");
        assert!(after < before, "{name}: {before} -> {after} nodes");
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
