//! The parts of the format that exporters rarely write still survive a round trip:
//! functions (with attribute defaults and overloads), training info, sparse initializers,
//! device configurations, metadata on every level, type variants, shadowed declarations.

use prost::Message;
use whittle_onnx::{proto, read_model_bytes};

fn kv(k: &str, v: &str) -> proto::StringStringEntryProto {
    proto::StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}

fn tensor_type(elem: i32, dims: &[Option<i64>]) -> proto::TypeProto {
    use proto::tensor_shape_proto::{Dimension, dimension::Value};
    proto::TypeProto {
        value: Some(proto::type_proto::Value::TensorType(
            proto::type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(proto::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(d.map_or(Value::DimParam("n".into()), Value::DimValue)),
                            denotation: None,
                        })
                        .collect(),
                }),
            },
        )),
        denotation: Some("TENSOR".into()),
    }
}

fn vi(name: &str, t: Option<proto::TypeProto>) -> proto::ValueInfoProto {
    proto::ValueInfoProto {
        name: Some(name.into()),
        r#type: t,
        doc_string: None,
        metadata_props: vec![kv("m", name)],
    }
}

fn node(op: &str, domain: &str, i: &[&str], o: &[&str]) -> proto::NodeProto {
    proto::NodeProto {
        op_type: Some(op.into()),
        domain: Some(domain.into()),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: o.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn rich_model() -> proto::ModelProto {
    let graph = rich_graph();
    proto::ModelProto {
        ir_version: Some(11),
        opset_import: vec![
            proto::OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(21),
            },
            proto::OperatorSetIdProto {
                domain: Some("local".into()),
                version: Some(1),
            },
        ],
        producer_name: Some("test".into()),
        producer_version: Some("0".into()),
        domain: Some("ai.test".into()),
        model_version: Some(3),
        doc_string: Some("doc".into()),
        graph: Some(graph),
        metadata_props: vec![kv("a", "b")],
        training_info: vec![proto::TrainingInfoProto {
            initialization: Some(proto::GraphProto {
                name: Some("init".into()),
                ..Default::default()
            }),
            update_binding: vec![kv("w", "w_new")],
            ..Default::default()
        }],
        functions: vec![rich_function()],
        configuration: vec![proto::DeviceConfigurationProto {
            name: Some("c0".into()),
            num_devices: Some(2),
            device: vec!["cpu:0".into(), "cpu:1".into()],
        }],
    }
}

/// A node calling a local function, with an overload, metadata and a device configuration.
fn rich_call() -> proto::NodeProto {
    let mut call = node("Scale", "local", &["x", ""], &["y"]);
    call.overload = Some("v2".into());
    call.metadata_props = vec![kv("source", "test")];
    call.device_configurations = vec![proto::NodeDeviceConfigurationProto {
        configuration_id: Some("c0".into()),
        sharding_spec: vec![proto::ShardingSpecProto {
            tensor_name: Some("x".into()),
            device: vec![0, 1],
            ..Default::default()
        }],
        pipeline_stage: Some(1),
    }];
    call
}

/// A local function with attributes, a reference attribute and its own opsets.
fn rich_function() -> proto::FunctionProto {
    proto::FunctionProto {
        name: Some("Scale".into()),
        domain: Some("local".into()),
        overload: Some("v2".into()),
        input: vec!["a".into(), "b".into()],
        output: vec!["c".into()],
        attribute: vec!["alpha".into()],
        attribute_proto: vec![proto::AttributeProto {
            head: proto::AttributeProtoHead {
                name: Some("beta".into()),
                f: Some(0.5),
                ..Default::default()
            },
            tail: proto::AttributeProtoTail {
                r#type: Some(1),
                ..Default::default()
            },
            ..Default::default()
        }],
        node: vec![proto::NodeProto {
            attribute: vec![proto::AttributeProto {
                head: proto::AttributeProtoHead {
                    name: Some("alpha".into()),
                    ..Default::default()
                },
                tail: proto::AttributeProtoTail {
                    ref_attr_name: Some("alpha".into()),
                    r#type: Some(1),
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..node("Elu", "", &["a"], &["c"])
        }],
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(18),
        }],
        value_info: vec![vi("c", None)],
        metadata_props: vec![kv("f", "1")],
        doc_string: Some("scales".into()),
    }
}

/// The main graph: every rare field of GraphProto, a sparse and a typed initializer.
fn rich_graph() -> proto::GraphProto {
    let seq = proto::TypeProto {
        value: Some(proto::type_proto::Value::SequenceType(Box::new(
            proto::type_proto::Sequence {
                elem_type: Some(Box::new(tensor_type(1, &[Some(2)]))),
            },
        ))),
        denotation: None,
    };
    let sparse = proto::SparseTensorProto {
        values: Some(proto::TensorProto {
            name: Some("sp".into()),
            data_type: Some(1),
            dims: vec![2],
            float_data: vec![1.0, 2.0],
            ..Default::default()
        }),
        indices: Some(proto::TensorProto {
            data_type: Some(7),
            dims: vec![2],
            int64_data: vec![0, 3],
            ..Default::default()
        }),
        dims: vec![4],
    };
    let typed = proto::TensorProto {
        name: Some("k".into()),
        data_type: Some(7),
        dims: vec![3],
        int64_data: vec![1, -2, 3],
        doc_string: Some("typed".into()),
        metadata_props: vec![kv("t", "1")],
        ..Default::default()
    };
    let call = rich_call();
    proto::GraphProto {
        name: Some("g".into()),
        node: vec![
            call,
            node("Add", "", &["y", "sp"], &["z"]),
            node("Identity", "", &["k"], &["kk"]),
        ],
        initializer: vec![typed],
        sparse_initializer: vec![sparse],
        input: vec![vi("x", Some(tensor_type(1, &[None, Some(4)])))],
        output: vec![vi("z", None), vi("kk", None), vi("s", Some(seq.clone()))],
        // `x` declared again with another type: kept as a shadow declaration.
        value_info: vec![
            vi("y", Some(tensor_type(1, &[None, Some(4)]))),
            vi("x", Some(seq)),
        ],
        quantization_annotation: vec![proto::TensorAnnotation {
            tensor_name: Some("y".into()),
            quant_parameter_tensor_names: vec![kv("SCALE_TENSOR", "k")],
        }],
        metadata_props: vec![kv("g", "1")],
        doc_string: Some("graph doc".into()),
    }
}

#[test]
fn rare_fields_round_trip() {
    let original = rich_model();
    let bytes = original.encode_to_vec();
    // `s` is an output nothing defines: not valid for the main graph, so drop it first.
    let mut valid = original.clone();
    valid.graph.as_mut().unwrap().output.pop();
    let bytes_valid = valid.encode_to_vec();
    let m = read_model_bytes(
        bytes_valid.clone().into(),
        std::path::Path::new("rich.onnx"),
        None,
    )
    .unwrap();
    let back =
        proto::ModelProto::decode(whittle_onnx::encode_model(&m).unwrap().as_slice()).unwrap();
    assert_eq!(back, valid);
    assert_eq!(
        whittle_onnx::encode_model(&m).unwrap(),
        bytes_valid,
        "byte-identical re-encoding"
    );
    // The undefined output is an error naming it.
    let e = read_model_bytes(bytes.into(), std::path::Path::new("rich.onnx"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'s'"), "{e}");
}
