//! Clean-up passes: rewrites on small built graphs (what fires, what must not) and
//! numeric checks on every fixture.

mod common;
use common::{cx, settings};
use whittle_eval::{InputSpec, random_inputs, run_model_file};
use whittle_ir::{DataType, Dim, Graph, Model, Node, OpsetImport, Tensor, Type};
use whittle_onnx::{ExportOptions, read_model, save_model};
use whittle_passes::{Level, PassCx, PassSettings, Pipeline};
use whittle_testkit::tract_fixtures;

/// x -> Identity -> a -> Relu -> b -> Identity -> y (output); plus an unused Neg.
fn chain() -> Model {
    let mut g = Graph::new();
    let x = g.intern("x");
    g.value_mut(x).info.ty = Some(Type::tensor(DataType::Float, [Dim::Known(4)]));
    g.push_input(x);
    let (a, b, y, dead) = (
        g.intern("a"),
        g.intern("b"),
        g.intern("y"),
        g.intern("dead"),
    );
    g.add_node(
        Node::new("Identity").with_name("id1"),
        vec![Some(x)],
        vec![Some(a)],
    )
    .unwrap();
    g.add_node(
        Node::new("Relu").with_name("relu"),
        vec![Some(a)],
        vec![Some(b)],
    )
    .unwrap();
    g.add_node(
        Node::new("Identity").with_name("id2"),
        vec![Some(b)],
        vec![Some(y)],
    )
    .unwrap();
    g.add_node(
        Node::new("Neg").with_name("neg"),
        vec![Some(x)],
        vec![Some(dead)],
    )
    .unwrap();
    let w = g.intern("unused_w");
    g.set_initializer(w, Tensor::from_f32(vec![1], &[1.0]));
    g.push_output(y);
    Model {
        ir_version: Some(8),
        opset_imports: vec![OpsetImport {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: g,
        has_graph: true,
        ..Default::default()
    }
}

fn ops(g: &Graph) -> Vec<String> {
    g.nodes_in_order()
        .unwrap()
        .iter()
        .map(|n| format!("{}:{}", g.node(*n).name(), g.node(*n).op()))
        .collect()
}

#[test]
fn identity_and_dead_code_on_a_chain() {
    let mut m = chain();
    let stats = Pipeline::for_level(Level::O2)
        .run(&mut m, &mut cx())
        .unwrap();
    m.graph.verify(false).unwrap();
    assert_eq!(ops(&m.graph), ["relu:Relu"]);
    // The output keeps its name: Relu now produces "y" directly.
    let out = m.graph.outputs()[0];
    assert_eq!(m.graph.value(out).name(), "y");
    assert_eq!(
        m.graph
            .value(out)
            .producer()
            .map(|p| m.graph.node(p.0).op().to_string()),
        Some("Relu".into())
    );
    assert!(m.graph.find("unused_w").is_none());
    assert_eq!(stats.iter().map(|s| s.rewrites).sum::<usize>(), 4);
}

#[test]
fn identity_of_a_graph_input_to_an_output_stays() {
    let mut g = Graph::new();
    let x = g.intern("x");
    g.push_input(x);
    let y = g.intern("y");
    g.add_node(Node::new("Identity"), vec![Some(x)], vec![Some(y)])
        .unwrap();
    g.push_output(y);
    let mut m = Model {
        graph: g,
        has_graph: true,
        ..Default::default()
    };
    Pipeline::for_level(Level::O2)
        .run(&mut m, &mut cx())
        .unwrap();
    assert_eq!(
        ops(&m.graph),
        [":Identity"],
        "removing it would rename the interface"
    );
}

#[test]
fn identity_in_another_domain_stays() {
    let mut m = chain();
    for n in m.graph.node_ids().collect::<Vec<_>>() {
        m.graph.node_mut(n).domain = Some("custom".into());
    }
    Pipeline::with_passes(&["identity".into()])
        .unwrap()
        .run(&mut m, &mut cx())
        .unwrap();
    assert_eq!(m.graph.node_count(), 4);
}

#[test]
fn bisect_limit_stops_after_n_rewrites() {
    let mut m = chain();
    let mut cx = PassCx::new(PassSettings {
        rewrite_limit: Some(1),
        ..settings()
    });
    Pipeline::for_level(Level::O2).run(&mut m, &mut cx).unwrap();
    assert_eq!(m.graph.node_count(), 3);
    m.graph.verify(false).unwrap();
}

#[test]
fn unknown_pass_names_list_the_valid_ones() {
    let e = Pipeline::with_passes(&["nope".into()]).err().unwrap();
    assert!(
        e.contains("nope") && e.contains("dead-code") && e.contains("identity"),
        "{e}"
    );
}

#[test]
fn fixtures_compute_the_same_and_a_second_run_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = InputSpec {
        dims: vec![("batch".into(), 2), ("seq".into(), 8)],
        int_high: 256, // the decoder fixtures have 256 tokens
        ..Default::default()
    };
    let mut removed = 0;
    for path in tract_fixtures() {
        let mut m = read_model(&path).unwrap();
        let before = m.graph.node_count();
        Pipeline::for_level(Level::O2)
            .run(&mut m, &mut cx())
            .unwrap();
        m.graph
            .verify(false)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        removed += before - m.graph.node_count();
        let out = tmp.path().join(path.file_name().unwrap());
        let opts = ExportOptions::default();
        save_model(&m, &out, &opts).unwrap();

        let inputs = random_inputs(&m.graph, &spec).unwrap();
        let a = run_model_file(&path, &inputs).unwrap();
        let b = run_model_file(&out, &inputs).unwrap();
        assert_eq!(a, b, "{}: outputs changed", path.display());

        let mut again = read_model(&out).unwrap();
        let stats = Pipeline::for_level(Level::O2)
            .run(&mut again, &mut cx())
            .unwrap();
        assert_eq!(
            stats.iter().map(|s| s.rewrites).sum::<usize>(),
            0,
            "{}: not idempotent",
            path.display()
        );
    }
    assert!(
        removed > 0,
        "the clean-up passes removed nothing from any fixture"
    );
}

/// With `--input-shape`, shape computations fold away and the model still computes the
/// same for inputs of that shape.
#[test]
fn static_input_shapes_fold_and_compute_the_same() {
    let spec = InputSpec {
        dims: vec![("batch".into(), 2), ("seq".into(), 8)],
        int_high: 256, // the decoder fixtures have 256 tokens
        ..Default::default()
    };
    for name in ["bert_tiny.ts.onnx", "bert_tiny.dyn.onnx"] {
        let path = whittle_testkit::fixture(name);
        let original = read_model(&path).unwrap();
        let mut m = original.clone();
        let mut cx = PassCx::new(PassSettings {
            input_shapes: vec![("input_ids".into(), vec![Dim::Known(2), Dim::Known(8)])],
            ..settings()
        });
        Pipeline::for_level(Level::O2).run(&mut m, &mut cx).unwrap();
        let shapes = m
            .graph
            .node_ids()
            .filter(|n| m.graph.node(*n).op() == "Shape")
            .count();
        assert_eq!(shapes, 0, "{name}: Shape nodes left");
        let inputs = random_inputs(&original.graph, &spec).unwrap();
        let a = whittle_eval::run_model(&original, name, &inputs).unwrap();
        let b = whittle_eval::run_model(&m, name, &inputs).unwrap();
        assert_eq!(a, b, "{name}");
    }
}
