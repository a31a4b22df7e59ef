//! `whittle optimize` with config files, globs and the combined report.

mod common;
use common::{s, whittle};

use std::path::Path;
use whittle_testkit::fixture;

/// A copy of a fixture in `dir` (so a whittle.toml can sit beside it).
fn copy(name: &str, dir: &Path) -> std::path::PathBuf {
    let to = dir.join(name);
    std::fs::copy(fixture(name), &to).unwrap();
    to
}

fn nodes_after(report: &Path) -> u64 {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    r["after"]["nodes"].as_u64().unwrap()
}

#[test]
fn flags_beat_model_sections_beat_the_top_level() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy("bert_tiny.ts.onnx", dir.path());
    let (out, rep) = (dir.path().join("o.onnx"), dir.path().join("r.json"));
    let run = |extra: &[&str]| {
        let mut args = vec!["optimize", s(&model), "-o", s(&out), "--report", s(&rep)];
        args.extend_from_slice(extra);
        let o = whittle(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&["--no-config"]);
    let o2 = nodes_after(&rep);
    std::fs::write(dir.path().join("whittle.toml"), "level = 0\n").unwrap();
    let text = run(&[]);
    assert!(text.contains("settings from"), "{text}");
    let o0 = nodes_after(&rep);
    assert!(o0 > o2, "level = 0 from whittle.toml: {o0} vs {o2}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&model).unwrap(),
        "-O0 re-encodes faithfully"
    );
    run(&["-O2"]);
    assert_eq!(nodes_after(&rep), o2, "the flag beats the file");
    std::fs::write(
        dir.path().join("whittle.toml"),
        "level = 0\n[model.\"bert_*\"]\nlevel = 2\n",
    )
    .unwrap();
    run(&[]);
    assert_eq!(nodes_after(&rep), o2, "the section beats the top level");
    run(&["--exclude", "rule:unsqueeze-chain"]);
    assert!(nodes_after(&rep) > o2, "--exclude reaches the passes");
    // --config names a file elsewhere; whittle.toml beside the model is then ignored.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "level = 0\n").unwrap();
    run(&["--config", s(&other)]);
    assert_eq!(nodes_after(&rep), o0);
}

#[test]
fn a_bad_config_is_an_error_that_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy("cnn_bn.ts.onnx", dir.path());
    let out = dir.path().join("o.onnx");
    std::fs::write(dir.path().join("whittle.toml"), "levle = 1\n").unwrap();
    let o = whittle(&["optimize", s(&model), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("whittle.toml") && err.contains("`levle`") && err.contains("valid keys"),
        "{err}"
    );
    assert!(!out.exists());
    std::fs::write(dir.path().join("whittle.toml"), "disable = [\"fusee\"]\n").unwrap();
    let o = whittle(&["optimize", s(&model), "-o", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("fusee") && err.contains("whittle.toml"),
        "{err}"
    );
    // An unknown rule to enable names itself and the rules that are off by default.
    std::fs::remove_file(dir.path().join("whittle.toml")).unwrap();
    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&out),
        "--enable",
        "rule:rotary",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("rule:rotary") && err.contains("off by default"),
        "{err}"
    );
    assert!(!out.exists());
    std::fs::write(dir.path().join("whittle.toml"), "disable = [\"fusee\"]\n").unwrap();
    // --check reports the same problem as an error (2), not as "would change".
    let o = whittle(&["optimize", s(&model), "-o", s(&out), "--check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn quoted_globs_keep_relative_paths_and_one_report_covers_all() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::create_dir_all(src.join("b")).unwrap();
    copy("cnn_bn.ts.onnx", &src.join("a"));
    copy("mobile_block.ts.onnx", &src.join("b"));
    std::fs::write(src.join("b").join("broken.onnx"), b"\x0a\xff\xff").unwrap();
    let out = dir.path().join("out");
    let rep = dir.path().join("all.json");
    let pattern = format!("{}/**/*.onnx", src.display());
    let o = whittle(&["optimize", &pattern, "-o", s(&out), "--report", s(&rep)]);
    assert_eq!(o.status.code(), Some(1), "one model is broken");
    assert!(out.join("a").join("cnn_bn.ts.onnx").exists());
    assert!(out.join("b").join("mobile_block.ts.onnx").exists());
    assert!(!out.join("b").join("broken.onnx").exists());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    assert_eq!(r["totals"]["models"], 3);
    assert_eq!(r["totals"]["failed"], 1);
    let models = r["models"].as_array().unwrap();
    let broken = models.iter().find(|m| m["ok"] == false).unwrap();
    assert!(broken["input"].as_str().unwrap().ends_with("broken.onnx"));
    assert!(!broken["error"].as_str().unwrap().is_empty());
    let sum: u64 = models
        .iter()
        .filter_map(|m| m["report"]["after"]["nodes"].as_u64())
        .sum();
    assert_eq!(r["totals"]["nodes_after"].as_u64(), Some(sum));
    let o = whittle(&[
        "optimize",
        &format!("{}/*.nothing", src.display()),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("matches no model"));
}

#[test]
fn quantize_int8_weights_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy("bert_tiny.ts.onnx", dir.path());
    let out = dir.path().join("q.onnx");
    let rep = dir.path().join("q.json");
    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&out),
        "--quantize",
        "int8-weights",
        "--report",
        s(&rep),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("relative weight error"), "{text}");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&out) * 3 < size(&model),
        "{} vs {}",
        size(&out),
        size(&model)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    assert_eq!(
        r["notes"].as_array().unwrap().len(),
        14,
        "2 embeddings + 12 MatMuls"
    );
    // The MatMul weights are read through Cast -> Mul (the default form), the embedding
    // tables gathered as int8 rows behind DequantizeLinear.
    assert_eq!(
        r["after"]["op_counts"]["DequantizeLinear"].as_u64(),
        Some(2)
    );
    assert!(r["after"]["op_counts"]["Cast"].as_u64().unwrap() >= 12);
}

#[test]
fn quantize_int8_weights_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy("bert_tiny.ts.onnx", dir.path());
    let out = dir.path().join("q.onnx");
    let rep = dir.path().join("q.json");
    // The same from whittle.toml; min-elements keeps small weights float.
    std::fs::write(
        dir.path().join("whittle.toml"),
        "quantize = \"int8-weights\"\nmin-elements = 5000\n",
    )
    .unwrap();
    let o = whittle(&["optimize", s(&model), "-o", s(&out), "--report", s(&rep)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    // word embeddings (64000) and the 64x128 / 128x64 MatMuls (8192) of both layers;
    // every 64x64 (4096) weight stays float.
    assert_eq!(r["notes"].as_array().unwrap().len(), 5);
    std::fs::write(dir.path().join("whittle.toml"), "quantize = \"int3\"\n").unwrap();
    let o = whittle(&["optimize", s(&model), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("int8-weights"));
}

#[test]
fn fp16_weights_and_options_without_a_mode() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy("bert_tiny.ts.onnx", dir.path());
    let out = dir.path().join("q.onnx");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    // fp16-weights halves the weights; per-tensor means nothing there.
    let h = dir.path().join("h.onnx");
    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&h),
        "--no-config",
        "--quantize",
        "fp16-weights",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        size(&h) * 10 < size(&model) * 6,
        "{} vs {}",
        size(&h),
        size(&model)
    );
    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&h),
        "--no-config",
        "--quantize",
        "fp16-weights",
        "--per-tensor",
    ]);
    assert_eq!(o.status.code(), Some(1));
    // Options without a mode are usage errors.
    assert_eq!(
        whittle(&["optimize", s(&model), "-o", s(&out), "--per-tensor"])
            .status
            .code(),
        Some(2)
    );
}
