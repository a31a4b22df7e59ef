//! Values captured by subgraphs stay consistent when the enclosing graph replaces them:
//! the subgraphs read the replacement by name, a local name in the way is renamed.

use whittle_ir::text::{PrintOptions, parse_model, print_model};

const SRC: &str = "ir_version 8
opset ai.onnx 18
graph {
  input x: f32[3]
  input c: bool[]
  output y: f32[3]
  a = Relu(x)
  o = Abs(x)
  y = If(c) {
    then_branch=graph t {
      output p: f32[3]
      o = Neg(a)
      p = Add(o, a)
    },
    else_branch=graph e {
      output q: f32[3]
      q = Sigmoid(a)
    }
  }
  z = Identity(o)
}
";

#[test]
fn replacing_a_captured_value_renames_it_in_the_subgraphs() {
    let mut m = parse_model(SRC).unwrap();
    let g = &mut m.graph;
    let (a, o) = (g.find("a").unwrap(), g.find("o").unwrap());
    g.replace_all_uses(a, o);
    let text = print_model(&m, &PrintOptions::default());
    // The then-branch's own `o` moves aside; both branches read the outer `o`.
    assert!(text.contains("Neg(o)"), "{text}");
    assert!(text.contains("Sigmoid(o)"), "{text}");
    assert!(!text.contains("(a)") && !text.contains(", a)"), "{text}");
    let local = text
        .lines()
        .find(|l| l.contains("= Neg(o)"))
        .and_then(|l| l.split([':', '=']).next())
        .map(|s| s.trim().to_string())
        .unwrap();
    assert_ne!(local, "o", "{text}");
    assert!(text.contains(&format!("Add({local}, o)")), "{text}");
    m.graph.verify(false).unwrap();
    let again = parse_model(&print_model(&m, &PrintOptions::default())).unwrap();
    assert_eq!(print_model(&again, &PrintOptions::default()), text);
}
