//! Helpers shared by the workspace's tests.

use std::path::{Path, PathBuf};

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

/// One fixture by file name.
pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// The external-data file name whittle's CLI uses for an output: `<file name>.data`.
pub fn external_location_for(out: &Path) -> String {
    format!(
        "{}.data",
        out.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    )
}
