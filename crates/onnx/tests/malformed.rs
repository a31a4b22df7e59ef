//! Malformed files give errors naming the problem, never panics, and never an output.

use prost::Message;
use std::path::Path;
use whittle_onnx::{proto, read_model};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> proto::NodeProto {
    proto::NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model(nodes: Vec<proto::NodeProto>, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
    let vi = |n: &&str| proto::ValueInfoProto {
        name: Some(n.to_string()),
        ..Default::default()
    };
    proto::ModelProto {
        ir_version: Some(8),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(proto::GraphProto {
            node: nodes,
            input: inputs.iter().map(vi).collect(),
            output: outputs.iter().map(vi).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn error_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "m.onnx", bytes);
    match read_model(&p) {
        Ok(_) => panic!("accepted a malformed model"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_file() {
    assert!(error_of(&[]).contains("empty"), "{}", error_of(&[]));
}

#[test]
fn random_bytes() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let e = error_of(&bytes);
    assert!(e.contains("m.onnx"), "{e}");
}

#[test]
fn truncated_model() {
    let m = model(vec![node("Relu", "r", &["x"], &["y"])], &["x"], &["y"]);
    for cut in [1, m.len() / 2, m.len() - 1] {
        let e = error_of(&m[..cut]);
        assert!(e.contains("m.onnx"), "{e}");
    }
}

#[test]
fn dangling_name_names_the_node() {
    let m = model(
        vec![node("Relu", "r1", &["nowhere"], &["y"])],
        &["x"],
        &["y"],
    );
    let e = error_of(&m);
    assert!(e.contains("r1") && e.contains("nowhere"), "{e}");
}

#[test]
fn two_producers_of_one_value() {
    let m = model(
        vec![
            node("Relu", "a", &["x"], &["y"]),
            node("Neg", "b", &["x"], &["y"]),
        ],
        &["x"],
        &["y"],
    );
    let e = error_of(&m);
    assert!(e.contains("'y'") && e.contains("twice"), "{e}");
}

#[test]
fn cycle_is_refused_on_read_naming_the_node() {
    let m = model(
        vec![
            node("Add", "a", &["x", "z"], &["y"]),
            node("Relu", "b", &["y"], &["z"]),
        ],
        &["x"],
        &["y"],
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "m.onnx", &m);
    let e = read_model(&p).unwrap_err().to_string();
    assert!(
        e.contains("m.onnx") && e.contains("node 'a'") && e.contains("cycle"),
        "{e}"
    );
}

#[test]
fn hostile_external_locations() {
    for loc in ["/etc/passwd", "../secret.bin", "missing.bin"] {
        let t = proto::TensorProto {
            name: Some("w".into()),
            data_type: Some(1),
            dims: vec![4],
            data_location: Some(1),
            external_data: vec![proto::StringStringEntryProto {
                key: Some("location".into()),
                value: Some(loc.into()),
            }],
            ..Default::default()
        };
        let mut m = proto::ModelProto::decode(model(vec![], &[], &["w"]).as_slice()).unwrap();
        m.graph.as_mut().unwrap().initializer.push(t);
        let e = error_of(&m.encode_to_vec());
        assert!(e.contains("'w'"), "{loc}: {e}");
    }
}

#[test]
fn short_external_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "w.bin", &[0u8; 8]);
    let entry = |k: &str, v: &str| proto::StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    let t = proto::TensorProto {
        name: Some("w".into()),
        data_type: Some(1),
        dims: vec![4],
        data_location: Some(1),
        external_data: vec![
            entry("location", "w.bin"),
            entry("offset", "0"),
            entry("length", "16"),
        ],
        ..Default::default()
    };
    let mut m = proto::ModelProto::decode(model(vec![], &[], &["w"]).as_slice()).unwrap();
    m.graph.as_mut().unwrap().initializer.push(t);
    let p = write(dir.path(), "m.onnx", &m.encode_to_vec());
    let e = read_model(&p).unwrap_err().to_string();
    assert!(e.contains("'w'") && e.contains("8 bytes"), "{e}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // 3000 nested If subgraphs, built as raw bytes from the inside out.
    let mut g = proto::GraphProto::default().encode_to_vec();
    for _ in 0..3000 {
        let attr = proto::AttributeProto {
            head: proto::AttributeProtoHead {
                name: Some("then_branch".into()),
                ..Default::default()
            },
            tail: proto::AttributeProtoTail {
                r#type: Some(5),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut a = attr.encode_to_vec();
        prost::encoding::bytes::encode(6, &g, &mut a);
        let mut n = proto::NodeProto {
            op_type: Some("If".into()),
            ..Default::default()
        }
        .encode_to_vec();
        prost::encoding::bytes::encode(5, &a, &mut n);
        let mut gg = Vec::new();
        prost::encoding::bytes::encode(1, &n, &mut gg);
        g = gg;
    }
    let mut m = proto::ModelProto {
        ir_version: Some(8),
        ..Default::default()
    }
    .encode_to_vec();
    prost::encoding::bytes::encode(7, &g, &mut m);
    let e = error_of(&m);
    assert!(e.contains("recursion"), "{e}");
}
