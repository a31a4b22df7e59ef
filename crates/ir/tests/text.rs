//! The text form: hand-written graphs parse, print back identically, and bad text gives
//! errors with a line number.

use whittle_ir::text::{PrintOptions, parse_model, print_model};

const FULL: PrintOptions = PrintOptions {
    max_values: None,
    color: false,
};

/// Parses, prints, parses the print and prints again: both prints and both graphs agree.
fn round_trip(src: &str) -> String {
    let m = parse_model(src).unwrap_or_else(|e| panic!("{e}"));
    let text = print_model(&m, &FULL);
    let again = parse_model(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(print_model(&again, &FULL), text);
    assert_eq!(again.graph, m.graph);
    text
}

#[test]
fn every_attribute_kind_survives() {
    let text = round_trip(
        r#"ir_version 9
        opset ai.onnx 18
        opset com.microsoft 1
        producer "pytorch" "2.5"
        graph "main graph" {
          input "x.1": f32[batch,3]
          input "onnx::Gemm_2": f32[3] = [1.0, -2.5, 1e-7]
          output y: f32[batch,3]
          init c: i64[2] = [3, -1]
          init s: string[2] = ["a\"b", "\xff"]
          init h: f16[2] = [0.5, 65504.0]
          init flag: bool[] = [true]
          k = Constant() {value=tensor f32[2] [0.25, inf]}
          t = Add("x.1", "onnx::Gemm_2") {fs=[1.0, 1e30], is=[1, 2], ss=["p", "q"], e=ints[], f=-0.0, i=-3, s="txt", ty=type f32[2,?]}
          y, "" = com.microsoft.Custom(t, "", k) {ts=[tensor i8[1] [-3]]} @"node one"
        }"#,
    );
    assert!(text.contains("com.microsoft.Custom(t, \"\", k)"), "{text}");
    assert!(text.contains("e=ints[]"), "{text}");
    assert!(text.contains("@\"node one\""), "{text}");
}

#[test]
fn nan_and_infinities_parse() {
    let m = parse_model("graph {\n  y = Constant() {value_floats=[NaN, -inf, inf]}\n}").unwrap();
    let text = print_model(&m, &FULL);
    assert_eq!(print_model(&parse_model(&text).unwrap(), &FULL), text);
    assert!(text.contains("[NaN, -inf, inf]"), "{text}");
}

#[test]
fn subgraphs_capture_outer_values() {
    let text = round_trip(
        r#"graph {
          input c: bool[]
          input x: f32[2]
          output y: f32[2]
          y = If(c) {
            then_branch=graph t {
              output a: f32[2]
              a = Relu(x)
            },
            else_branch=graph e {
              output b: f32[2]
              b = Neg(x)
            }
          }
        }"#,
    );
    let m = parse_model(&text).unwrap();
    let g = &m.graph;
    let n = g.node_ids().next().unwrap();
    assert_eq!(g.node(n).captures().len(), 1, "the If captures x");
}

#[test]
fn elided_and_random_constants_are_deterministic() {
    let src = r#"graph {
          input x: f32[4]
          output y: f32[4]
          init w: f32[4] = [1.0, 2.0, ...]
          init r: f32[4] = random
          y = Add(x, w)
          z = Mul(x, r)
        }"#;
    let a = parse_model(src).unwrap();
    let b = parse_model(src).unwrap();
    assert_eq!(a.graph, b.graph);
    let g = &a.graph;
    let w = g
        .value(g.find("w").unwrap())
        .initializer()
        .unwrap()
        .to_f32_vec()
        .unwrap();
    assert_eq!(&w[..2], &[1.0, 2.0]);
    assert!(w[2..].iter().all(|v| (-1.0..1.0).contains(v)));
}

#[test]
fn errors_name_the_line() {
    let cases = [
        ("graph {\n  input x: f32[2]\n  y = Relu(x\n}", "line 4"),
        ("graph {\n  output y: f32[2]\n  y = Relu(nope)\n}", "nope"),
        (
            "graph {\n  init w: f32[3] = [1.0]\n}",
            "1 values for 3 elements",
        ),
        ("graph {\n  init w: i8[1] = [300]\n}", "does not fit"),
        ("graph {\n  input x: f99[2]\n}", "line 2"),
        ("graph {\n  y = Relu(x)\n  y = Relu(x)\n}", "defined twice"),
        ("graph { s = \"open }", "unterminated"),
    ];
    for (src, want) in cases {
        let err = parse_model(src).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(want), "{src:?}: {err}");
    }
}
