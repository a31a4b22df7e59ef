//! Attribute lists (`floats`, `ints`, `strings`) read from a file stay views of it until a
//! pass reads them: written back unread they are the same values, a list in any encoding
//! the format allows (unpacked, packed, split between runs) reads as the values it holds,
//! and a malformed list is an error when the file is read, not when a pass reads it.

use bytes::Bytes;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use std::path::Path;
use whittle_ir::attr::Attribute;
use whittle_ir::model::Model;
use whittle_onnx::{encode_model, proto, read_model_bytes};

/// One attribute's bytes, written field by field as a test needs them.
#[derive(Default)]
struct Attr(Vec<u8>);

impl Attr {
    fn name(mut self, n: &str) -> Attr {
        prost::encoding::string::encode(1, &n.to_string(), &mut self.0);
        self
    }
    fn kind(mut self, k: i32) -> Attr {
        prost::encoding::int32::encode(20, &k, &mut self.0);
        self
    }
    fn ints(mut self, v: &[i64]) -> Attr {
        prost::encoding::int64::encode_repeated(8, v, &mut self.0);
        self
    }
    fn ints_packed(mut self, v: &[i64]) -> Attr {
        prost::encoding::int64::encode_packed(8, v, &mut self.0);
        self
    }
    fn floats(mut self, v: &[f32]) -> Attr {
        prost::encoding::float::encode_repeated(7, v, &mut self.0);
        self
    }
    fn floats_packed(mut self, v: &[f32]) -> Attr {
        prost::encoding::float::encode_packed(7, v, &mut self.0);
        self
    }
    fn strings(mut self, v: &[&str]) -> Attr {
        for s in v {
            prost::encoding::bytes::encode(9, &Bytes::copy_from_slice(s.as_bytes()), &mut self.0);
        }
        self
    }
    fn raw(mut self, b: &[u8]) -> Attr {
        self.0.extend_from_slice(b);
        self
    }
}

/// A model with one `Identity` node (x → y) carrying `attrs`, as file bytes.
fn model_with(attrs: Vec<Attr>) -> Bytes {
    let mut node = proto::NodeProto {
        op_type: Some("Identity".into()),
        input: vec!["x".into()],
        output: vec!["y".into()],
        ..Default::default()
    }
    .encode_to_vec();
    for a in attrs {
        prost::encoding::bytes::encode(5, &a.0, &mut node);
    }
    let vi = |n: &str| proto::ValueInfoProto {
        name: Some(n.into()),
        ..Default::default()
    };
    // Fields in number order, as prost (and protobuf) write them.
    let mut graph = Vec::new();
    prost::encoding::bytes::encode(1, &node, &mut graph);
    proto::GraphProto {
        name: Some("g".into()),
        input: vec![vi("x")],
        output: vec![vi("y")],
        ..Default::default()
    }
    .encode_raw(&mut graph);
    let mut model = proto::ModelProto {
        ir_version: Some(8),
        ..Default::default()
    }
    .encode_to_vec();
    prost::encoding::bytes::encode(7, &graph, &mut model);
    proto::ModelProto {
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        ..Default::default()
    }
    .encode_raw(&mut model);
    Bytes::from(model)
}

fn read(bytes: Bytes) -> Result<Model, whittle_onnx::OnnxError> {
    read_model_bytes(bytes, Path::new("m.onnx"), None)
}

fn attr<'a>(m: &'a Model, name: &str) -> &'a Attribute {
    let g = &m.graph;
    let n = g.node_ids().next().expect("the model has one node");
    g.node(n).attr(name).expect("the attribute is there")
}

#[test]
fn lists_read_as_views_and_write_back_unread_as_the_same_bytes() {
    let bytes = model_with(vec![
        Attr::default()
            .name("ids")
            .ints(&[0, 1, 300, -5, i64::MAX])
            .kind(7),
        Attr::default()
            .name("values")
            .floats(&[0.5, -1.25, f32::MAX])
            .kind(6),
        Attr::default()
            .name("modes")
            .strings(&["BRANCH_LEQ", "LEAF", ""])
            .kind(8),
    ]);
    let m = read(bytes.clone()).unwrap();
    let (ids, values, modes) = (attr(&m, "ids"), attr(&m, "values"), attr(&m, "modes"));
    for decoded in [
        ids.ints.is_decoded(),
        values.floats.is_decoded(),
        modes.strings.is_decoded(),
    ] {
        assert!(!decoded, "reading the model decodes no list");
    }
    assert_eq!(ids.ints.len(), 5, "the count needs no decoding");
    assert_eq!(
        encode_model(&m).unwrap(),
        bytes.to_vec(),
        "written back unread"
    );
    assert!(!ids.ints.is_decoded(), "writing decodes nothing either");
    assert_eq!(ids.ints[..], [0, 1, 300, -5, i64::MAX]);
    assert_eq!(values.floats[..], [0.5, -1.25, f32::MAX]);
    let modes: Vec<&[u8]> = modes.strings.iter().map(|s| s.as_ref()).collect();
    assert_eq!(modes, [&b"BRANCH_LEQ"[..], b"LEAF", b""]);
}

#[test]
fn packed_and_split_lists_read_as_their_values_and_write_unpacked() {
    // ints in three runs: unpacked, packed, unpacked again after another field.
    let bytes = model_with(vec![
        Attr::default()
            .name("ids")
            .ints(&[1, 2])
            .ints_packed(&[3, 4, 5])
            .kind(7)
            .ints(&[6]),
        Attr::default()
            .name("w")
            .floats_packed(&[1.0, 2.0])
            .floats(&[3.0])
            .kind(6),
    ]);
    let m = read(bytes).unwrap();
    assert_eq!(attr(&m, "ids").ints[..], [1, 2, 3, 4, 5, 6]);
    assert_eq!(attr(&m, "w").floats[..], [1.0, 2.0, 3.0]);
    let again = read(Bytes::from(encode_model(&m).unwrap())).unwrap();
    let want = model_with(vec![
        Attr::default()
            .name("ids")
            .ints(&[1, 2, 3, 4, 5, 6])
            .kind(7),
        Attr::default().name("w").floats(&[1.0, 2.0, 3.0]).kind(6),
    ]);
    assert_eq!(
        encode_model(&again).unwrap(),
        want.to_vec(),
        "written as prost writes"
    );
}

#[test]
fn a_list_a_pass_changes_is_written_from_its_new_values() {
    let bytes = model_with(vec![Attr::default().name("ids").ints(&[1, 2, 3]).kind(7)]);
    let mut m = read(bytes).unwrap();
    let n = m.graph.node_ids().next().unwrap();
    let node = m.graph.node_mut(n);
    let a = node.attributes.iter_mut().next().unwrap();
    a.ints.push(4);
    a.ints[0] = 9;
    assert!(
        a.ints.source().is_none(),
        "a written list no longer has its views"
    );
    let again = read(Bytes::from(encode_model(&m).unwrap())).unwrap();
    assert_eq!(attr(&again, "ids").ints[..], [9, 2, 3, 4]);
}

#[test]
fn a_list_decoded_from_a_buffer_that_is_not_kept_holds_its_values() {
    // Plain prost decoding (not a model file being read) keeps nothing of the buffer.
    let a = Attr::default().name("ids").ints(&[7, 8]).kind(7);
    let p = proto::AttributeProto::decode(&a.0[..]).unwrap();
    assert!(matches!(
        p.ints,
        whittle_onnx::wire_list::WireList::Values(_)
    ));
    assert_eq!(p.ints.to_vec(), [7, 8]);
    assert_eq!(p.encode_to_vec(), a.0, "and writes the same bytes");
}

#[test]
fn a_malformed_list_is_an_error_when_the_file_is_read() {
    let mut truncated = Vec::new();
    encode_key(8, WireType::Varint, &mut truncated);
    truncated.push(0x80); // a varint that never ends
    let cases = [
        (
            "a varint cut short",
            Attr::default().name("ids").raw(&truncated),
        ),
        (
            "packed floats that are not whole floats",
            Attr::default().name("w").raw(&{
                let mut b = Vec::new();
                encode_key(7, WireType::LengthDelimited, &mut b);
                encode_varint(3, &mut b);
                b.extend([0, 0, 0]);
                b
            }),
        ),
        (
            "ints with the wrong wire type",
            Attr::default().name("ids").raw(&{
                let mut b = Vec::new();
                encode_key(8, WireType::ThirtyTwoBit, &mut b);
                b.extend([0, 0, 0, 0]);
                b
            }),
        ),
    ];
    for (what, a) in cases {
        let e = read(model_with(vec![a]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.onnx"), "{what}: {e}");
    }
}
