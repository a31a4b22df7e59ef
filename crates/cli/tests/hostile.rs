//! Broken and hostile models (fixtures/hostile, made by fixtures/gen/make_hostile.py,
//! plus cases built here): each must give exit 1 and a message naming the problem and
//! the node, tensor or file; never a panic, never an output file, never a clobbered one.

mod common;
use common::whittle;

use std::path::{Path, PathBuf};

fn hostile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/hostile")
        .join(name)
}

/// (file, words the error must contain)
const CASES: &[(&str, &[&str])] = &[
    ("empty.onnx", &["empty.onnx", "empty"]),
    (
        "random_bytes.onnx",
        &["random_bytes.onnx", "not a valid ONNX model"],
    ),
    (
        "text_file.onnx",
        &["text_file.onnx", "not a valid ONNX model"],
    ),
    ("cycle.onnx", &["node 'first'", "'b'", "cycle"]),
    (
        "undefined_name.onnx",
        &["node 'uses_ghost'", "'ghost'", "never defined"],
    ),
    (
        "used_before_defined.onnx",
        &["node 'late_user'", "'t'", "topological order"],
    ),
    (
        "two_producers.onnx",
        &["'y'", "defined twice", "node 'one'", "node 'two'"],
    ),
    (
        "output_never_produced.onnx",
        &["graph output 'y'", "never defined"],
    ),
    (
        "no_opset_import.onnx",
        &["node 'relu_y'", "does not import"],
    ),
    (
        "unknown_domain_opset.onnx",
        &["com.nowhere", "does not import"],
    ),
    (
        "size_mismatch.onnx",
        &["tensor 'w'", "4000000 bytes", "holds 16"],
    ),
    ("dims_overflow.onnx", &["tensor 'w'", "overflows"]),
    (
        "negative_dims.onnx",
        &["tensor 'w'", "negative dimension -5"],
    ),
    (
        "float_data_short.onnx",
        &["tensor 'w'", "need 16 bytes", "holds 8"],
    ),
    ("huge_input_dims.onnx", &["value 'x'", "overflows"]),
    ("conv_zero_stride.onnx", &["node 'conv'", "strides = 0"]),
    (
        "conv_negative_stride.onnx",
        &["node 'conv'", "strides = -1"],
    ),
    ("conv_zero_dilation.onnx", &["node 'conv'", "dilations = 0"]),
    (
        "conv_huge_pads.onnx",
        &["node 'conv'", "pads = 4611686018427387904"],
    ),
    ("conv_bad_group.onnx", &["node 'conv'", "group = 0"]),
    ("external_absolute.onnx", &["tensor 'w'", "absolute path"]),
    (
        "external_escape.onnx",
        &["tensor 'w'", "leaves the model's folder"],
    ),
    (
        "external_missing.onnx",
        &["tensor 'w'", "external_missing.bin"],
    ),
    (
        "external_short.onnx",
        &["tensor 'w'", "need 16 bytes", "holds 8"],
    ),
    (
        "external_offset_past_end.onnx",
        &["tensor 'w'", "has 8 bytes"],
    ),
];

/// Runs optimize (into a fresh folder and over an existing file) and dump on `model`;
/// all must fail cleanly with `words` in the message.
fn fails_cleanly(model: &Path, words: &[&str]) {
    let label = model.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let m = model.to_str().unwrap();
    let o = whittle(&["optimize", m, "-o", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{label}: {err}");
    assert!(!err.contains("panicked"), "{label}: {err}");
    for w in words {
        assert!(err.contains(w), "{label}: expected '{w}' in: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{label}: files left behind: {left:?}");
    // An existing output is left exactly as it was.
    std::fs::write(&out, b"precious").unwrap();
    let o = whittle(&["optimize", m, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious", "{label}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "{label}");
    let o = whittle(&["dump", m, "--summary"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{label} dump: {err}");
    assert!(!err.contains("panicked"), "{label} dump: {err}");
}

#[test]
fn every_hostile_fixture_fails_cleanly() {
    for (name, words) in CASES {
        fails_cleanly(&hostile(name), words);
    }
    let on_disk = std::fs::read_dir(hostile(""))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "onnx"))
        })
        .count();
    assert_eq!(
        on_disk,
        CASES.len(),
        "every file in fixtures/hostile has a row"
    );
}

#[test]
fn every_truncation_of_a_real_model_fails_cleanly() {
    let bytes = std::fs::read(whittle_testkit::fixture("mobile_block.ts.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cuts at many points, including inside the header, a node and the weights.
    let step = (bytes.len() / 40).max(1);
    for cut in (1..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        let p = dir.path().join(format!("cut{cut}.onnx"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let o = whittle(&[
            "optimize",
            p.to_str().unwrap(),
            "-o",
            dir.path().join("o.onnx").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "cut at {cut}: {err}");
        if o.status.success() {
            continue; // a cut between top-level fields can leave a valid, smaller model
        }
        assert_eq!(o.status.code(), Some(1), "cut at {cut}: {err}");
        assert!(
            err.contains(&format!("cut{cut}.onnx")),
            "cut at {cut}: {err}"
        );
        assert!(!dir.path().join("o.onnx").exists());
    }
}

/// Appends a length-delimited protobuf field.
fn field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    varint(out, u64::from(number << 3 | 2));
    varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A model whose graph holds an If whose then_branch holds an If ... `depth` deep,
/// encoded by hand from the inside out (no recursion here either).
fn nested_ifs(depth: usize) -> Vec<u8> {
    let mut graph: Vec<u8> = Vec::new(); // innermost: an empty graph
    for _ in 0..depth {
        let mut attr = Vec::new();
        field(&mut attr, 1, b"then_branch"); // AttributeProto.name
        field(&mut attr, 6, &graph); // AttributeProto.g
        attr.extend([0xa0, 0x01, 5]); // AttributeProto.type (field 20) = GRAPH
        let mut node = Vec::new();
        field(&mut node, 1, b"cond"); // NodeProto.input
        field(&mut node, 4, b"If"); // NodeProto.op_type
        field(&mut node, 5, &attr); // NodeProto.attribute
        let mut g = Vec::new();
        field(&mut g, 1, &node); // GraphProto.node
        graph = g;
    }
    let mut model = vec![0x08, 8]; // ir_version 8
    field(&mut model, 7, &graph); // ModelProto.graph
    let mut opset = Vec::new();
    opset.extend([0x10, 17]); // OperatorSetIdProto.version
    field(&mut model, 8, &opset);
    model
}

#[test]
fn protobuf_nesting_far_past_any_real_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for depth in [3000, 100_000] {
        let p = dir.path().join(format!("nested{depth}.onnx"));
        std::fs::write(&p, nested_ifs(depth)).unwrap();
        fails_cleanly(
            &p,
            &[&format!("nested{depth}.onnx"), "not a valid ONNX model"],
        );
    }
}

#[test]
fn symlinked_external_data_cannot_leave_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    std::fs::copy(hostile("external_missing.onnx"), &model).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("external_missing.bin"))
            .unwrap();
        let o = whittle(&[
            "optimize",
            model.to_str().unwrap(),
            "-o",
            dir.path().join("o.onnx").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("tensor 'w'") && err.contains("resolves outside the model's folder"),
            "{err}"
        );
    }
}
