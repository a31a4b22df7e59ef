//! `whittle verify`, `optimize --verify` and `whittle bench` from the command line.

mod common;
use common::{s, whittle};

use whittle_ir::Tensor;
use whittle_onnx::{ExportOptions, read_model, save_model};
use whittle_testkit::{fixture, fixtures_dir};

#[test]
fn identical_models_verify_exactly() {
    let m = fixture("bert_tiny.ts.onnx");
    let o = whittle(&["verify", s(&m), s(&m), "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 3, "three random input sets by default");
    assert!(
        outs.iter()
            .all(|d| d["max_abs"] == 0.0 && d["cosine"] == 1.0)
    );
}

#[test]
fn a_one_percent_change_to_one_weight_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed.onnx");
    let mut m = read_model(&fixture("cnn_bn.ts.onnx")).unwrap();
    let w = m.graph.find("fc.weight").unwrap();
    let t = m.graph.value(w).initializer().unwrap();
    let mut v = t.to_f32_vec().unwrap();
    let big = (0..v.len())
        .max_by(|a, b| v[*a].abs().total_cmp(&v[*b].abs()))
        .unwrap();
    v[big] *= 1.01;
    let mut nt = Tensor::from_f32(t.dims.clone(), &v);
    nt.name = t.name.clone();
    m.graph.set_initializer(w, nt);
    save_model(&m, &changed, &ExportOptions::default()).unwrap();
    let o = whittle(&["verify", s(&fixture("cnn_bn.ts.onnx")), s(&changed)]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("NOT verified") && text.contains(" NO"),
        "{text}"
    );
}

#[test]
fn real_inputs_and_unrunnable_models() {
    let data = fixtures_dir().join("../data/cnn_bn.ts/test_data_set_0");
    let m = fixture("cnn_bn.ts.onnx");
    let o = whittle(&[
        "verify",
        s(&m),
        s(&fixture("cnn_bn.dyn.onnx")),
        "--inputs",
        s(&data),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 input set(s) from"));
    // A model tract cannot run: an op it does not know.
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("odd.onnx");
    let mut model = read_model(&m).unwrap();
    let n = model
        .graph
        .node_ids()
        .find(|n| model.graph.node(*n).op() == "Relu")
        .unwrap();
    model.graph.node_mut(n).op_type = Some("MysteryOp".into());
    save_model(&model, &odd, &ExportOptions::default()).unwrap();
    let o = whittle(&["verify", s(&m), s(&odd)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tract cannot load") && err.contains("MysteryOp"),
        "{err}"
    );
}

#[test]
fn optimize_verify_reports_what_it_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let report = dir.path().join("r.json");
    let o = whittle(&[
        "optimize",
        s(&fixture("bert_tiny.ts.onnx")),
        "-o",
        s(&out),
        "--verify",
        "--runs",
        "2",
        "--report",
        s(&report),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("verified against the original on 2 random input set(s)"),
        "{text}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["verify"]["rolled_back"], serde_json::json!([]));
    assert_eq!(r["verify"]["max_abs"], 0.0);
    let o = whittle(&["verify", s(&fixture("bert_tiny.ts.onnx")), s(&out)]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn bench_reports_both_models_and_the_ratio() {
    let m = fixture("cnn_bn.ts.onnx");
    let o = whittle(&[
        "bench",
        s(&m),
        s(&fixture("cnn_bn.dyn.onnx")),
        "--runs",
        "3",
        "--warmup",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("median ms")
            && text.contains("p90 ms")
            && text.contains("ratio (second / first)"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("cnn_bn.")).count(),
        2,
        "{text}"
    );
}
