//! Every fixture model, read and written back unmodified, gives the same protobuf message;
//! external data and subgraphs survive; the writes are atomic.

use bytes::Bytes;
use prost::Message;
use std::path::Path;
use whittle_onnx::{ExportOptions, proto, read_model, save_model};
use whittle_testkit::{fixtures, fixtures_dir};

fn decode(path: &Path) -> proto::ModelProto {
    proto::ModelProto::decode(Bytes::from(std::fs::read(path).unwrap())).unwrap()
}

/// Reads `path`'s external files into the proto so two models can be compared by content.
fn external_payloads(path: &Path, m: &proto::ModelProto) -> Vec<(String, Vec<u8>)> {
    let dir = path.parent().unwrap();
    let mut out = Vec::new();
    for t in &m.graph.as_ref().unwrap().initializer {
        if t.data_location == Some(1) {
            let get = |k: &str| {
                t.external_data
                    .iter()
                    .find(|e| e.key.as_deref() == Some(k))
                    .and_then(|e| e.value.clone())
            };
            let file = std::fs::read(dir.join(get("location").unwrap())).unwrap();
            let off: usize = get("offset").map_or(0, |s| s.parse().unwrap());
            let len: usize = get("length").map_or(file.len() - off, |s| s.parse().unwrap());
            out.push((t.name.clone().unwrap(), file[off..off + len].to_vec()));
        }
    }
    out
}

#[test]
fn every_fixture_round_trips_protobuf_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let models = fixtures();
    assert!(
        models.len() >= 8,
        "expected the generated fixtures, found {}",
        models.len()
    );
    for path in models {
        let model = read_model(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        model
            .graph
            .verify(false)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = tmp.path().join(path.file_name().unwrap());
        let opts = ExportOptions::default();
        save_model(&model, &out, &opts).unwrap();
        let (a, b) = (decode(&path), decode(&out));
        assert!(a == b, "{} changed on the way through", path.display());
        assert_eq!(
            external_payloads(&path, &a),
            external_payloads(&out, &b),
            "{}",
            path.display()
        );
    }
}

#[test]
fn external_data_fixture_is_external_and_mapped() {
    let path = fixtures()
        .into_iter()
        .find(|p| p.to_string_lossy().contains(".ext."))
        .expect("an external-data fixture");
    let m = read_model(&path).unwrap();
    let ext: Vec<_> = m
        .graph
        .initializers()
        .iter()
        .filter_map(|v| m.graph.value(*v).initializer())
        .filter(|t| t.is_external())
        .collect();
    assert!(!ext.is_empty());
    for t in ext {
        assert_eq!(t.le_bytes().unwrap().len() as u64, t.stored_bytes());
    }
}

#[test]
fn subgraph_fixtures_keep_their_if_nodes() {
    for path in fixtures()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("if_gate"))
    {
        let m = read_model(&path).unwrap();
        let ifs: Vec<_> = m
            .graph
            .node_ids()
            .filter(|n| m.graph.node(*n).op() == "If")
            .collect();
        assert!(!ifs.is_empty(), "{}: no If node", path.display());
        for n in ifs {
            assert_eq!(
                m.graph
                    .node(n)
                    .attributes
                    .iter()
                    .flat_map(|a| a.subgraphs())
                    .count(),
                2
            );
        }
    }
}

#[test]
fn threshold_moves_large_tensors_out_and_back() {
    let path = fixtures()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("cnn_bn.ts.onnx"))
        .unwrap();
    let m = read_model(&path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ext.onnx");
    let opts = ExportOptions {
        external_threshold: Some(1024),
        external_location: Some("ext.onnx.data".into()),
        ..Default::default()
    };
    let report = save_model(&m, &out, &opts).unwrap();
    assert_eq!(report.external_files.len(), 1);
    let back = read_model(&out).unwrap();
    for v in m.graph.initializers() {
        let name = m.graph.value(*v).name();
        let a = m.graph.value(*v).initializer().unwrap();
        let b = back
            .graph
            .value(back.graph.find(name).unwrap())
            .initializer()
            .unwrap();
        assert_eq!(a.le_bytes().unwrap(), b.le_bytes().unwrap(), "{name}");
        assert_eq!(b.is_external(), a.stored_bytes() >= 1024, "{name}");
    }
}

/// Paddle2ONNX and some TensorFlow converters declare a dynamic dim as -1: it reads as
/// unknown (nothing's size depends on a declaration), and is written back as -1 while it
/// stays unknown, so the file round-trips unchanged. The shipped PaddleOCR classifier is
/// such an export.
#[test]
fn negative_declared_dims_read_as_unknown_and_round_trip() {
    let path = fixtures_dir().join("../real/ppocr_mobile_v2_cls.paddle.onnx");
    let bytes = std::fs::read(&path).unwrap();
    let m = whittle_onnx::read_model(&path).unwrap();
    let x = m.graph.inputs()[0];
    let shape = match &m.graph.value(x).info.ty.as_ref().unwrap().kind {
        whittle_ir::TypeKind::Tensor { shape: Some(s), .. } => s.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(shape[0].dim, whittle_ir::Dim::Unknown);
    assert_eq!(shape[0].written, Some(whittle_ir::Dim::Known(-1)));
    assert_eq!(shape[1].dim, whittle_ir::Dim::Known(3));
    // Height and width are the symbol "?", which names no one size.
    assert_eq!(shape[2].dim, whittle_ir::Dim::Unknown);
    assert_eq!(shape[2].written, Some(whittle_ir::Dim::Param("?".into())));
    let out = whittle_onnx::encode_model(&m).unwrap();
    assert_eq!(
        proto::ModelProto::decode(out.as_slice()).unwrap(),
        proto::ModelProto::decode(bytes.as_slice()).unwrap()
    );
}

/// An in-memory encoding of a model with external data embeds every external tensor's
/// bytes: the buffer holds no external reference and the same payloads.
#[test]
fn inline_encoding_embeds_external_tensors() {
    let path = fixtures_dir().join("cnn_bn.ts.ext.onnx");
    let original = decode(&path);
    let payloads = external_payloads(&path, &original);
    assert!(!payloads.is_empty(), "the fixture has external tensors");
    let m = read_model(&path).unwrap();
    let inline =
        proto::ModelProto::decode(Bytes::from(whittle_onnx::encode_model_inline(&m).unwrap()))
            .unwrap();
    let graph = inline.graph.as_ref().unwrap();
    for (name, bytes) in payloads {
        let t = graph
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(name.as_str()))
            .unwrap();
        assert_eq!(t.data_location, None, "{name}");
        assert!(t.external_data.is_empty(), "{name}");
        assert_eq!(t.raw_data.as_deref(), Some(&bytes[..]), "{name}");
    }
    assert!(
        whittle_onnx::encode_model(&m).is_err(),
        "the plain encoder refuses"
    );
}
