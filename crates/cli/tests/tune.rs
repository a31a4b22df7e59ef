//! `whittle tune`: the plan it writes meets the budget on held-out data, the settings it
//! prints reproduce that model with `whittle optimize`, a second run reads its
//! measurements from the cache, and a time limit stops the search.

mod common;
use common::{s, whittle};

use std::path::{Path, PathBuf};
use whittle_testkit::fixture;

fn calib() -> PathBuf {
    whittle_testkit::fixtures_dir().join("../data/vgg_digits/calib.npy")
}

/// `tune` on the trained digits CNN in tract (top-1 budget, calibration data), as JSON.
fn tune(out: &Path, cache: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let model = fixture("vgg_digits.ts.onnx");
    let calib = calib();
    let base = [
        "tune",
        s(&model),
        "-o",
        s(out),
        "--budget",
        "top1=0.9",
        "--calibrate",
        s(&calib),
        "--cache",
        s(cache),
        "--format",
        "json",
    ];
    let o = whittle(&[&base[..], extra].concat());
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        o.status.code(),
        json,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn tune_writes_a_plan_within_the_budget_that_optimize_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let (out, cache) = (dir.path().join("tuned.onnx"), dir.path().join("cache"));
    let (code, r, err) = tune(&out, &cache, &[]);
    assert_eq!(code, Some(0), "{err}");
    let measured = r["measured"].as_array().unwrap();
    let chosen = r["chosen"].as_u64().unwrap() as usize;
    let c = &measured[chosen];
    assert!(c["held"].as_bool().unwrap() && !c["reference"].as_bool().unwrap());
    assert!(c["stable_low"].as_f64().unwrap() >= 0.9 || c["rows"].as_u64().unwrap() < 29);
    assert_eq!(measured[0]["plan"], "original");
    assert!(
        measured.len() > 4,
        "plans for a CNN with dense layers: {measured:?}"
    );
    // No plan that met the budget is faster than the chosen one by more than noise.
    let fastest = measured[1..]
        .iter()
        .filter(|m| m["held"].as_bool().unwrap() && m["error"].is_null())
        .map(|m| m["latency_ms"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(c["latency_ms"].as_f64().unwrap() <= fastest * 1.03 + 1e-9);
    let front = r["front"].as_array().unwrap();
    assert!(!front.is_empty());
    // The printed settings reproduce the written model with `whittle optimize`.
    let toml = dir.path().join("whittle.toml");
    std::fs::write(&toml, r["toml"].as_str().unwrap()).unwrap();
    let again = dir.path().join("again.onnx");
    let model = fixture("vgg_digits.ts.onnx");
    let o = whittle(&["optimize", s(&model), "-o", s(&again), "--config", s(&toml)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&again).unwrap(),
        "{}",
        r["toml"]
    );
    // A second run measures nothing again and chooses the same plan.
    let (code, second, err) = tune(&dir.path().join("second.onnx"), &cache, &[]);
    assert_eq!(code, Some(0), "{err}");
    let cached = second["cached"].as_array().unwrap();
    assert!(
        cached[1..].iter().all(|c| c.as_bool() == Some(true)),
        "{cached:?}"
    );
    assert_eq!(second["chosen"], r["chosen"]);
}

#[test]
fn a_time_limit_stops_the_search_and_nothing_is_written_without_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tuned.onnx");
    let (code, r, err) = tune(&out, &dir.path().join("c"), &["--time-limit", "0s"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(r["stopped"].as_str().unwrap().contains("time limit"), "{r}");
    assert_eq!(
        r["measured"].as_array().unwrap().len(),
        1,
        "only the original"
    );
    assert!(r["chosen"].is_null() && !out.exists());
}

#[test]
fn tune_needs_a_whole_model_budget() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.onnx");
    let model = fixture("vgg_digits.ts.onnx");
    for (budget, says) in [
        (None, "tune needs --budget"),
        (Some("tol=0.1"), "whole model"),
    ] {
        let mut args = vec!["tune", s(&model), "-o", s(&out), "--no-cache"];
        if let Some(b) = budget {
            args.extend(["--budget", b]);
        }
        let o = whittle(&args);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
        assert!(!out.exists());
    }
}
