//! Proof by symbolic evaluation: a region is proved when what it hands on is the same
//! term before and after. Each right rewrite below is proved; each wrong one (a reshape
//! to other dims, a "no-op" that broadcasts, a merged chain with other axes, a Split by
//! another count, two random ops taken as one) is not.

use std::collections::BTreeSet;
use whittle_certify::components::Component;
use whittle_certify::replay::ModelState;
use whittle_certify::symbolic::{Inits, Prover};
use whittle_ir::Model;
use whittle_ir::text::parse_model;

/// Whether the optimized model's nodes that differ from the original's hand on what the
/// original's did, for every input.
fn proved(original: &str, optimized: &str) -> bool {
    let (a, b) = (parse(original), parse(optimized));
    let (sa, sb) = (ModelState::of(&a), ModelState::of(&b));
    let (ga, gb) = (&sa.scopes[&Vec::new()], &sb.scopes[&Vec::new()]);
    let differing = |x: &whittle_certify::replay::GraphState,
                     y: &whittle_certify::replay::GraphState|
     -> BTreeSet<String> {
        x.nodes
            .iter()
            .filter(|(k, r)| y.nodes.get(*k) != Some(*r))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let c = Component {
        before: differing(ga, gb),
        after: differing(gb, ga),
        ..Component::default()
    };
    assert!(!c.after.is_empty(), "the optimized model differs");
    let inits = |s: &ModelState| -> Inits {
        s.scopes
            .iter()
            .map(|(k, g)| (k.clone(), g.inits.clone()))
            .collect()
    };
    let (ia, ib) = (inits(&sa), inits(&sb));
    let mut p = Prover::new(&a, &ia, &b, &ib);
    p.prove(&c).is_some()
}

fn parse(text: &str) -> Model {
    parse_model(text).expect("test model parses")
}

const RESHAPE_FROM_SHAPE: &str = "graph {
  input x: f32[n,6]
  output y: f32[n,3,2]
  init zero: i64[] = [0]
  init axes: i64[1] = [0]
  init rest: i64[2] = [3, 2]
  s = Shape(x)
  b = Gather(s, zero) {axis=0}
  u = Unsqueeze(b, axes)
  t = Concat(u, rest) {axis=0}
  y = Reshape(x, t)
}";

fn reshape_to(target: &str) -> String {
    format!(
        "graph {{
  input x: f32[n,6]
  output y: f32[n,3,2]
  init c: i64[3] = [{target}]
  y = Reshape(x, c)
}}"
    )
}

#[test]
fn a_reshape_target_computed_from_shape_equals_its_constant_forms() {
    // 0 copies x's first dim; -1 takes what is left (n·6 / 6 = n).
    assert!(proved(RESHAPE_FROM_SHAPE, &reshape_to("0, 3, 2")));
    assert!(proved(RESHAPE_FROM_SHAPE, &reshape_to("-1, 3, 2")));
    // Other dims, or the same dims in another order, are another tensor.
    assert!(!proved(RESHAPE_FROM_SHAPE, &reshape_to("0, 2, 3")));
    assert!(!proved(RESHAPE_FROM_SHAPE, &reshape_to("3, 0, 2")));
}

fn scaled(x_dims: &str, ones: &str) -> String {
    format!(
        "graph {{
  input x: f32[{x_dims}]
  output z: f32[?,?]
  init c: f32[{ones}]
  y = Mul(x, c)
  z = Relu(y)
}}"
    )
}

fn relu_of_x(x_dims: &str) -> String {
    format!(
        "graph {{
  input x: f32[{x_dims}]
  output z: f32[?,?]
  z = Relu(x)
}}"
    )
}

#[test]
fn multiplying_by_ones_is_x_only_when_broadcasting_keeps_its_shape() {
    let ones = |n: usize| format!("{n}] = [{}", vec!["1.0"; n].join(", "));
    assert!(proved(&scaled("n,3", &ones(3)), &relu_of_x("n,3")));
    // Not all ones.
    let twos = "3] = [1.0, 2.0, 1.0";
    assert!(!proved(&scaled("n,3", twos), &relu_of_x("n,3")));
    // Ones of shape [2, 3] broadcast x [1, 3] to [2, 3]: not x.
    let wide = "2,3] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0";
    assert!(!proved(&scaled("1,3", wide), &relu_of_x("1,3")));
}

fn unsqueezed(chain: &str) -> String {
    format!(
        "graph {{
  input x: f32[n,4]
  output y: f32[?,?,?,?]
  init a0: i64[1] = [0]
  init a01: i64[2] = [0, 1]
  init a02: i64[2] = [0, 2]
{chain}
}}"
    )
}

#[test]
fn unsqueeze_chains_merge_only_into_the_same_axes() {
    let chain = unsqueezed("  u = Unsqueeze(x, a0)\n  y = Unsqueeze(u, a0)");
    assert!(proved(&chain, &unsqueezed("  y = Unsqueeze(x, a01)")));
    assert!(!proved(&chain, &unsqueezed("  y = Unsqueeze(x, a02)")));
}

#[test]
fn transposes_compose_and_the_identity_is_the_input() {
    let two = "graph {
  input x: f32[2,3,4]
  output y: f32[2,3,4]
  t = Transpose(x) {perm=[1, 2, 0]}
  y = Transpose(t) {perm=[2, 0, 1]}
}";
    let none = "graph {
  input x: f32[2,3,4]
  output y: f32[2,3,4]
  y = Identity(x)
}";
    let other = "graph {
  input x: f32[2,3,4]
  output y: f32[2,3,4]
  y = Transpose(x) {perm=[0, 2, 1]}
}";
    assert!(proved(two, none));
    assert!(!proved(two, other));
}

#[test]
fn a_split_by_another_count_is_another_op() {
    let split = |n: usize| {
        let outs: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        format!(
            "graph {{
  input x: f32[12]
  output p0: f32[?]
  {} = Split(x) {{axis=0, num_outputs={n}}}
}}",
            outs.join(", ")
        )
    };
    assert!(!proved(&split(2), &split(3)));
}

#[test]
fn two_random_ops_are_never_one() {
    let two = "graph {
  input x: f32[4]
  output z: f32[4]
  r = RandomNormalLike(x)
  q = RandomNormalLike(x)
  z = Add(r, q)
}";
    let one = "graph {
  input x: f32[4]
  output z: f32[4]
  r = RandomNormalLike(x)
  z = Add(r, r)
}";
    assert!(!proved(two, one));
}

#[test]
fn shape_arithmetic_folds_to_its_value() {
    let computed = "graph {
  input x: f32[n,8]
  output y: f32[?,?]
  init i1: i64[] = [1]
  init two: i64[] = [2]
  init axes: i64[1] = [0]
  init m1: i64[1] = [-1]
  s = Shape(x)
  d = Gather(s, i1) {axis=0}
  h = Div(d, two)
  u = Unsqueeze(h, axes)
  t = Concat(m1, u) {axis=0}
  y = Reshape(x, t)
}";
    let folded = |t: &str| {
        format!(
            "graph {{
  input x: f32[n,8]
  output y: f32[?,?]
  init c: i64[2] = [{t}]
  y = Reshape(x, c)
}}"
        )
    };
    assert!(proved(computed, &folded("-1, 4")));
    assert!(!proved(computed, &folded("-1, 2")));
}

const TRANSPOSED_WEIGHT: &str = "graph {
  input x: f32[n,2]
  output y: f32[n,3]
  init w: f32[3,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
  t = Transpose(w) {perm=[1, 0]}
  y = MatMul(x, t)
}";

fn folded_weight(values: &str) -> String {
    format!(
        "graph {{
  input x: f32[n,2]
  output y: f32[n,3]
  init wt: f32[2,3] = [{values}]
  y = MatMul(x, wt)
}}"
    )
}

#[test]
fn a_folded_constant_is_proved_by_the_checkers_own_arithmetic_and_a_wrong_one_is_not() {
    assert!(proved(
        TRANSPOSED_WEIGHT,
        &folded_weight("1.0, 3.0, 5.0, 2.0, 4.0, 6.0")
    ));
    assert!(!proved(
        TRANSPOSED_WEIGHT,
        &folded_weight("1.0, 2.0, 3.0, 4.0, 5.0, 6.0")
    ));
    // sqrt(2) in float64, cast to float32, times x: the folded scale must be the
    // correctly rounded value, to the last bit.
    let scaled = "graph {
  input x: f32[4]
  output y: f32[4]
  init d: f64[] = [2.0]
  r = Sqrt(d)
  s = Cast(r) {to=1}
  y = Mul(x, s)
}";
    let folded = |v: f32| {
        format!(
            "graph {{
  input x: f32[4]
  output y: f32[4]
  init c: f32[] = [{v:e}]
  y = Mul(x, c)
}}"
        )
    };
    let exact = 2f64.sqrt() as f32;
    assert!(proved(scaled, &folded(exact)));
    assert!(!proved(
        scaled,
        &folded(f32::from_bits(exact.to_bits() + 1))
    ));
}
