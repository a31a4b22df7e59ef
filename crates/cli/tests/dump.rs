//! `whittle dump`: the listing parses back, summaries and costs are right, JSON keeps its
//! keys, Graphviz renders, two models compare.

mod common;
use common::{s, whittle};

use std::process::{Command, Stdio};
use whittle_testkit::{fixture, fixtures_dir};

fn stdout_of(args: &[&str]) -> String {
    let o = whittle(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

#[test]
fn listing_shows_types_and_parses_back() {
    let text = stdout_of(&["dump", s(&fixture("bert_tiny.dyn.onnx"))]);
    assert!(text.contains("input input_ids: i64[batch,seq]"), "{text}");
    assert!(
        text.contains("output last_hidden_state: f32[batch,seq,64]"),
        "{text}"
    );
    assert!(
        text.contains(", ...]"),
        "large constants are elided: {text}"
    );
    let m = whittle_ir::text::parse_model(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.graph.node_count(), 128);
    let full = stdout_of(&["dump", "--full", s(&fixture("cnn_bn.ts.onnx"))]);
    assert!(!full.contains("..."), "{full}");
    whittle_ir::text::parse_model(&full).unwrap();
}

#[test]
fn summary_json_has_the_documented_keys_in_order() {
    let out = stdout_of(&[
        "dump",
        "--summary",
        "--format",
        "json",
        s(&fixture("bert_tiny.ts.onnx")),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "schema_version",
        "ir_version",
        "opsets",
        "inputs",
        "outputs",
        "nodes",
        "op_counts",
        "params",
        "initializer_bytes",
        "macs",
        "flops",
    ] {
        assert!(keys.contains(&k), "missing {k}: {keys:?}");
    }
    assert!(out.starts_with("{\n  \"schema_version\""), "{out}");
    assert_eq!(v["opsets"]["ai.onnx"], 18);
    assert_eq!(v["inputs"][0]["dims"], serde_json::json!(["batch", "seq"]));
    // Symbolic dims give a formula (the dynamo export keeps `seq` through its position
    // slice; the TorchScript one slices a constant by `seq`, which is only known bound)...
    let dynamo = stdout_of(&[
        "dump",
        "--summary",
        "--format",
        "json",
        s(&fixture("bert_tiny.dyn.onnx")),
    ]);
    let d: serde_json::Value = serde_json::from_str(&dynamo).unwrap();
    assert_eq!(d["macs"], "256*batch*seq*seq+65536*batch*seq");
    // ...and fixing them gives a number.
    let fixed = stdout_of(&[
        "dump",
        "--summary",
        "--format",
        "json",
        "--input-shape",
        "input_ids=1,16",
        s(&fixture("bert_tiny.ts.onnx")),
    ]);
    let f: serde_json::Value = serde_json::from_str(&fixed).unwrap();
    assert!(f["macs"].as_i64().is_some_and(|m| m > 0), "{}", f["macs"]);
    assert_eq!(
        f["dynamic_dims"],
        serde_json::json!([]),
        "binding input_ids binds the mask too"
    );
    // Key order is stable from run to run.
    assert_eq!(
        out,
        stdout_of(&[
            "dump",
            "--summary",
            "--format",
            "json",
            s(&fixture("bert_tiny.ts.onnx"))
        ])
    );
}

/// MACs of the torchvision fixtures against torchvision's published figures.
#[test]
fn macs_match_torchvision_within_three_percent() {
    let published: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("torchvision_ops.json")).unwrap(),
    )
    .unwrap();
    let entries = published.as_object().unwrap();
    assert!(entries.len() >= 2);
    for (file, meta) in entries {
        let shape: Vec<String> = meta["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        let arg = format!("input={}", shape.join(","));
        let out = stdout_of(&[
            "dump",
            "--summary",
            "--format",
            "json",
            "--input-shape",
            &arg,
            s(&fixture(file)),
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let ours = v["macs"]
            .as_i64()
            .unwrap_or_else(|| panic!("{file}: {}", v["macs"])) as f64;
        let theirs = meta["gmacs"].as_f64().unwrap() * 1e9;
        let err = (ours - theirs).abs() / theirs;
        assert!(
            err < 0.03,
            "{file}: {ours} MACs vs published {theirs} ({:.1}%)",
            err * 100.0
        );
    }
}

#[test]
fn summary_text_and_cost_table() {
    let sum = stdout_of(&[
        "dump",
        "--summary",
        "--input-shape",
        "input=1,3,224,224",
        s(&fixture("squeezenet1_1.ts.onnx")),
    ]);
    for want in [
        "nodes:",
        "params:",
        "initializer bytes:",
        "MACs: 349M",
        "FLOPs:",
        "dynamic dims: none",
        "largest tensors:",
    ] {
        assert!(sum.contains(want), "missing {want}: {sum}");
    }
    let cost = stdout_of(&[
        "dump",
        "--cost",
        "--sort",
        "macs",
        "--input-shape",
        "input=1,3,224,224",
        s(&fixture("squeezenet1_1.ts.onnx")),
    ]);
    let rows: Vec<&str> = cost.lines().skip(1).collect();
    assert!(rows[0].contains("Conv"), "{cost}");
    let first_pct: f64 = rows[0]
        .split_whitespace()
        .find(|w| w.ends_with('%'))
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    let last_pct = rows
        .iter()
        .rev()
        .find_map(|r| r.split_whitespace().find(|w| w.ends_with('%')));
    assert!(last_pct.is_none_or(|p| p.trim_end_matches('%').parse::<f64>().unwrap() <= first_pct));
}

#[test]
fn graphviz_renders() {
    let dot = stdout_of(&[
        "dump",
        "--format",
        "dot",
        s(&fixture("mobile_block.ts.onnx")),
    ]);
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(
        dot.contains("Conv\\nf32["),
        "weights fold into their node: {dot}"
    );
    assert!(
        dot.contains("label=\"f32[batch,64,16,16]\""),
        "shapes on edges: {dot}"
    );
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` is installed (scripts/test installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("<svg"));
}

#[test]
fn compare_shows_both_and_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let o = whittle(&["optimize", s(&fixture("cnn_bn.ts.onnx")), "-o", s(&out)]);
    assert!(o.status.success());
    let text = stdout_of(&["dump", "--compare", s(&fixture("cnn_bn.ts.onnx")), s(&out)]);
    assert!(
        text.contains("change") && text.contains("nodes") && text.contains("MACs"),
        "{text}"
    );
    let json = stdout_of(&[
        "dump",
        "--compare",
        "--format",
        "json",
        s(&fixture("cnn_bn.ts.onnx")),
        s(&out),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["a"]["nodes"].is_u64() && v["b"]["nodes"].is_u64());
    assert_eq!(
        whittle(&["dump", "--compare", s(&out)]).status.code(),
        Some(1)
    );
}

#[test]
fn bad_input_shapes_are_clear_errors() {
    let o = whittle(&[
        "dump",
        "--input-shape",
        "nope=1",
        s(&fixture("cnn_bn.ts.onnx")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope") && err.contains("input"), "{err}");
    let o = whittle(&[
        "dump",
        "--input-shape",
        "input=1,2",
        s(&fixture("cnn_bn.ts.onnx")),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("declares 4"));
}
