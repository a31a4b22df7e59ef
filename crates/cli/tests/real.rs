//! Trained models from other converters, as packages ship them (fixtures/real, fetched by
//! fixtures/gen/fetch_real.py): they load, re-encode unchanged at -O0, and optimize
//! faithfully under --verify.

mod common;
use common::{s, whittle};

use whittle_testkit::fixtures_dir;

#[test]
fn paddle_ocr_classifier_with_minus_one_dims_loads_and_optimizes_faithfully() {
    let model = fixtures_dir().join("../real/ppocr_mobile_v2_cls.paddle.onnx");
    let dir = tempfile::tempdir().unwrap();
    let dump = whittle(&["dump", s(&model), "--summary"]);
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(
        String::from_utf8_lossy(&dump.stderr).contains("declares dim -1"),
        "the -1 is reported once"
    );
    let same = dir.path().join("o0.onnx");
    let o = whittle(&["optimize", s(&model), "-o", s(&same), "-O0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&same).unwrap(),
        std::fs::read(&model).unwrap()
    );
    let out = dir.path().join("o2.onnx");
    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&out),
        "--verify",
        "--input-shape",
        "x=2,3,48,192",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("verified against the original"), "{text}");
    let (before, after) = (
        whittle_onnx::read_model(&model).unwrap().graph.node_count(),
        whittle_onnx::read_model(&out).unwrap().graph.node_count(),
    );
    assert!(after * 2 < before, "{before} -> {after} nodes");
}
