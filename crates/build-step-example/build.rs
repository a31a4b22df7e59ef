//! Optimizes a fixture model into OUT_DIR; cargo re-runs this only when the model (or
//! its external data) changes, and whittle skips the work when its hash matches.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let model = manifest.join("../../fixtures/models/bert_tiny.ts.onnx");
    let optimizer = whittle::Optimizer::new().input_shape("input_ids", &[1, 16]);
    let out = whittle::build::optimize(&model, &optimizer).expect("whittle optimizes the model");
    println!("cargo:rustc-env=WHITTLE_ORIGINAL={}", model.display());
    println!("cargo:rustc-env=WHITTLE_OPTIMIZED={}", out.display());
}
