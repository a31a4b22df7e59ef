//! The fuzz targets as plain functions: `fuzz/` (cargo-fuzz, libFuzzer) calls them on
//! generated inputs and `tests/regressions.rs` on every input that ever crashed one.
//!
//! Each returns normally for any input: errors are the expected answer to bad input.
//! A panic, an abort, a hang or a failed property (`assert!` below) is a bug.

use bytes::Bytes;
use std::path::Path;
use whittle_ir::Model;
use whittle_ir::infer::{InferOptions, infer};
use whittle_ir::text::{PrintOptions, parse_model, print_model};

/// Models with more nodes or constant bytes than this are decoded but not optimized
/// (keeps each execution fast; size limits are tested separately).
const OPTIMIZE_MAX_NODES: usize = 256;
const OPTIMIZE_MAX_BYTES: u64 = 1 << 20;

fn decode(data: &[u8]) -> Option<Model> {
    // No base folder: external data is refused, never read from disk.
    whittle_onnx::read_model_bytes(Bytes::copy_from_slice(data), Path::new("<fuzz>"), None).ok()
}

/// Protobuf decode → import → text listing.
pub fn decode_import(data: &[u8]) {
    if let Some(m) = decode(data) {
        let _ = print_model(&m, &PrintOptions::default());
    }
}

/// Decode → shape inference (with and without a bound input shape).
pub fn infer_shapes(data: &[u8]) {
    let Some(mut m) = decode(data) else { return };
    let _ = infer(&mut m, &InferOptions::default());
    let first = m.graph.inputs().first().copied();
    if let Some(v) = first {
        let name = m.graph.value(v).name().to_string();
        let opts = InferOptions {
            input_shapes: vec![(name, vec![whittle_ir::Dim::Known(2); 4])],
        };
        let _ = infer(&mut m, &opts);
    }
}

/// Decode → the driver at `-O2` (every phase, as `whittle optimize` runs it) → encode →
/// decode again: what whittle writes must read back.
pub fn optimize_roundtrip(data: &[u8]) {
    let Some(mut m) = decode(data) else { return };
    let (nodes, bytes) = size(&m);
    if nodes > OPTIMIZE_MAX_NODES || bytes > OPTIMIZE_MAX_BYTES {
        return;
    }
    if whittle::Optimizer::new().optimize_model(&mut m).is_err() {
        return;
    }
    let Ok(out) = whittle_onnx::encode_model(&m) else {
        return;
    };
    let back = whittle_onnx::read_model_bytes(out.into(), Path::new("<fuzz out>"), None);
    assert!(
        back.is_ok(),
        "whittle wrote a model it cannot read: {:?}",
        back.err()
    );
}

/// Text listing → parse → print → parse: a listing whittle prints must parse back.
pub fn text_roundtrip(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = parse_model(src) else { return };
    let full = PrintOptions {
        max_values: None,
        color: false,
    };
    let printed = print_model(&m, &full);
    let again = parse_model(&printed);
    assert!(
        again.is_ok(),
        "printed listing does not parse: {:?}\n{printed}",
        again.err()
    );
}

/// The quantize modes [`lossy_plan`] picks from (those that need no calibration data).
pub const LOSSY_MODES: &[&str] = &[
    "int8-weights",
    "int8-dynamic",
    "int4",
    "fp16-weights",
    "fp16",
];

/// First byte: a quantize mode; the rest: a model. Decode → `-O2` then the lossy step
/// (the one driver, as the CLI runs it) → encode → decode again, and the IR verifier
/// must accept the result.
pub fn lossy_plan(data: &[u8]) {
    let Some((pick, rest)) = data.split_first() else {
        return;
    };
    let Some(mut m) = decode(rest) else { return };
    let (nodes, bytes) = size(&m);
    if nodes > OPTIMIZE_MAX_NODES || bytes > OPTIMIZE_MAX_BYTES {
        return;
    }
    let settings = whittle::Settings {
        quantize: Some(LOSSY_MODES[usize::from(*pick) % LOSSY_MODES.len()].into()),
        min_elements: Some(1),
        ..whittle::Settings::default()
    };
    let Ok(optimizer) = whittle::Optimizer::from_settings(&settings) else {
        return;
    };
    if optimizer.optimize_model(&mut m).is_err() {
        return;
    }
    if let Err(e) = m.graph.verify(false) {
        panic!("the lossy plan left an invalid graph: {e}");
    }
    let Ok(out) = whittle_onnx::encode_model(&m) else {
        return;
    };
    let back = whittle_onnx::read_model_bytes(out.into(), Path::new("<fuzz out>"), None);
    assert!(
        back.is_ok(),
        "whittle wrote a lossy model it cannot read: {:?}",
        back.err()
    );
}

fn size(m: &Model) -> (usize, u64) {
    let g = &m.graph;
    let bytes = g
        .initializers()
        .iter()
        .filter_map(|v| g.value(*v).initializer())
        .map(|t| t.stored_bytes())
        .sum();
    (g.node_count(), bytes)
}
