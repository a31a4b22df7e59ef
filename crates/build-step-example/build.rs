//! Optimizes a fixture model into OUT_DIR with the settings in this crate's Cargo.toml
//! (`[package.metadata.whittle]`); cargo re-runs this only when the model, its external
//! data or the manifest changes, and whittle skips the work when its hash matches.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let model = manifest.join("../../fixtures/models/bert_tiny.ts.onnx");
    let out = match whittle::build::optimize_configured(&model) {
        Ok(out) => out,
        Err(e) => panic!("whittle could not optimize {}: {e}", model.display()),
    };
    println!("cargo:rustc-env=WHITTLE_ORIGINAL={}", model.display());
    println!("cargo:rustc-env=WHITTLE_OPTIMIZED={}", out.display());
}
