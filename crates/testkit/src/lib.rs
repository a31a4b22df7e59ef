//! Helpers shared by the workspace's tests.

use std::path::PathBuf;

/// The folder of the committed fixture models. Found at run time from the manifest dir
/// cargo gives the running test (a path baked in at compile time would point at another
/// checkout when target dirs are shared).
pub fn fixtures_dir() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .map(|d| d.join("fixtures/models"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| start.join("../../fixtures/models"))
}

/// Every committed fixture model (`fixtures/models/*.onnx`), sorted. Panics when the
/// folder is missing: the tests that call this cannot run without it.
pub fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/models exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    v.sort();
    v
}

/// Fixtures tract 0.23 cannot load, with a word of its error: the dynamo exports of the
/// decoder prompt models compute positions with a CumSum over a symbolic dim. Tests that
/// run every fixture in tract run [`tract_fixtures`]; `tract_still_refuses_...` (in
/// whittle-eval's tests) checks tract still fails on these, so the list shrinks when tract
/// learns.
pub const TRACT_CANNOT_LOAD: &[(&str, &str)] = &[
    ("llama_prompt.dyn.onnx", "CumSum"),
    ("qwen2_prompt.dyn.onnx", "CumSum"),
];

/// Every fixture but those in [`TRACT_CANNOT_LOAD`].
pub fn tract_fixtures() -> Vec<PathBuf> {
    fixtures()
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !TRACT_CANNOT_LOAD.iter().any(|(n, _)| *n == name)
        })
        .collect()
}

/// One fixture by file name.
pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// The cosine similarity of two vectors (1 when both are zero), for numeric checks that
/// a rewrite kept a model's outputs.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 && nb == 0.0 {
        1.0
    } else {
        dot / (na * nb)
    }
}
