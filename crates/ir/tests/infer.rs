//! Shape inference, written as text in / types out: each case is a small graph in the
//! text form and the types inference gives its values.

use std::collections::BTreeMap;
use whittle_ir::Dim;
use whittle_ir::infer::{InferOptions, infer};
use whittle_ir::text::{parse_model, type_text};

/// Infers `src` and returns every value's type as text, plus the warnings.
fn run(src: &str, shapes: &[(&str, Vec<Dim>)]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut m = parse_model(src).expect("test graph parses");
    let opts = InferOptions {
        input_shapes: shapes
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect(),
    };
    let inf = infer(&mut m, &opts).expect("inference runs");
    let g = &m.graph;
    let types = g
        .value_ids()
        .map(|v| {
            (
                g.value(v).name().to_string(),
                type_text(g.value(v).info.ty.as_ref()),
            )
        })
        .collect();
    (types, inf.warnings)
}

fn types(src: &str) -> BTreeMap<String, String> {
    let (t, w) = run(src, &[]);
    assert!(w.is_empty(), "unexpected warnings: {w:?}");
    t
}

#[test]
fn shape_chain_feeds_reshape_with_symbols() {
    let t = types(
        r#"graph {
          input x: f32[batch,seq,64]
          output y: ?
          init zero: i64[1] = [0]
          init one: i64[1] = [1]
          init heads: i64[2] = [4, 16]
          s = Shape(x)
          b = Gather(s, zero) {axis=0}
          q = Gather(s, one) {axis=0}
          shape = Concat(b, q, heads) {axis=0}
          y = Reshape(x, shape)
        }"#,
    );
    assert_eq!(t["shape"], "i64[4]");
    assert_eq!(t["y"], "f32[batch,seq,4,16]");
}

#[test]
fn flatten_and_minus_one_keep_symbols() {
    let t = types(
        r#"graph {
          input x: f32[batch,seq,64]
          output z: ?
          init s1: i64[2] = [-1, 64]
          init s2: i64[4] = [0, -1, 4, 16]
          f = Flatten(x) {axis=2}
          r = Reshape(x, s1)
          z = Reshape(r, s2)
        }"#,
    );
    assert_eq!(t["f"], "f32[\"batch*seq\",64]");
    assert_eq!(t["r"], "f32[\"batch*seq\",64]");
    // dim 0 copies "batch*seq"; -1 is then 64*batch*seq / (64*batch*seq) = 1
    assert_eq!(t["z"], "f32[\"batch*seq\",1,4,16]");
}

#[test]
fn conv_geometry() {
    let t = types(
        r#"graph {
          input x: f32[n,8,h,15]
          output a: ?
          init w: f32[16,4,3,3] = random
          init dw: f32[8,1,3,3] = random
          a = Conv(x, w) {group=2, pads=[1,0,2,1], strides=[1,2], dilations=[1,2]}
          s = Conv(x, dw) {group=8, auto_pad="SAME_UPPER", strides=[2,2]}
          v = Conv(x, dw) {group=8, auto_pad="VALID"}
        }"#,
    );
    // H: h + 1 + 2 - 3 + 1 = h+1; W: floor((15 + 0 + 1 - 5)/2) + 1 = 6
    assert_eq!(t["a"], "f32[n,16,\"h+1\",6]");
    // SAME: ceil(h/2) is not a polynomial, W = ceil(15/2) = 8
    assert_eq!(t["s"], "f32[n,8,?,8]");
    assert_eq!(t["v"], "f32[n,8,\"h-2\",13]");
}

#[test]
fn transposed_conv_and_pools() {
    let t = types(
        r#"graph {
          input x: f32[1,4,5,5]
          output y: ?
          init w: f32[4,2,3,3] = random
          y = ConvTranspose(x, w) {group=2, strides=[2,2], pads=[1,1,1,1], output_padding=[1,1]}
          p = MaxPool(x) {kernel_shape=[2,2], strides=[2,2], ceil_mode=1}
          q = MaxPool(x) {kernel_shape=[2,2], strides=[2,2]}
          g = GlobalAveragePool(x)
        }"#,
    );
    // (5-1)*2 + 1 + 3 - 2 = 10; 4 output channels (2 per group x 2 groups)
    assert_eq!(t["y"], "f32[1,4,10,10]");
    assert_eq!(t["p"], "f32[1,4,3,3]");
    assert_eq!(t["q"], "f32[1,4,2,2]");
    assert_eq!(t["g"], "f32[1,4,1,1]");
}

#[test]
fn slices_keep_symbolic_lengths() {
    let t = types(
        r#"graph {
          input x: f32[batch,seq]
          output y: ?
          init st: i64[1] = [1]
          init en: i64[1] = [9223372036854775807]
          init ax: i64[1] = [1]
          init e2: i64[1] = [-1]
          init z: i64[1] = [0]
          y = Slice(x, st, en, ax)
          w = Slice(x, z, e2, ax)
        }"#,
    );
    assert_eq!(t["y"], "f32[batch,\"seq-1\"]");
    assert_eq!(t["w"], "f32[batch,\"seq-1\"]");
}

#[test]
fn unknown_ops_stop_nothing_downstream_of_others() {
    let (t, w) = run(
        r#"graph {
          input x: f32[2,3]
          output a: ?
          output b: ?
          u = com.example.Mystery(x)
          a = Relu(u)
          b = Sigmoid(x)
          n = NonZero(x)
        }"#,
        &[],
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(t["u"], "?");
    assert_eq!(t["a"], "?");
    assert_eq!(t["b"], "f32[2,3]");
    assert_eq!(t["n"], "i64[2,nonzero_1]");
}

#[test]
fn contradictions_are_warnings_naming_the_node() {
    let (t, w) = run(
        r#"graph {
          input x: f32[2]
          input y: f32[3]
          output z: ?
          z = Add(x, y) @bad_add
          r = Relu(x)
        }"#,
        &[],
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("bad_add") && w[0].contains("broadcast"),
        "{w:?}"
    );
    assert_eq!(t["r"], "f32[2]");
}

#[test]
fn declared_types_are_merged_and_conflicts_reported() {
    let src = r#"graph {
          input x: f32[batch,3]
          output y: f32[batch,5]
          init w: f32[3,4] = random
          y = MatMul(x, w) @mm
        }"#;
    let (t, w) = run(src, &[]);
    assert_eq!(t["y"], "f32[batch,4]");
    assert!(
        w.iter()
            .any(|w| w.contains("mm") && w.contains("declared 5")),
        "{w:?}"
    );
    let (t, w) = run(
        r#"graph {
          input x: f32[?,3]
          output y: f32[n,4]
          init w: f32[3,4] = random
          y = MatMul(x, w)
        }"#,
        &[],
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        t["y"], "f32[n,4]",
        "a declared symbol refines an unknown dim"
    );
}

#[test]
fn input_shapes_bind_symbols_everywhere() {
    let src = r#"graph {
          input ids: i64[batch,seq]
          input mask: i64[batch,seq]
          output y: ?
          y = Add(ids, mask)
        }"#;
    let (t, w) = run(src, &[("ids", vec![Dim::Known(2), Dim::Known(128)])]);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(t["ids"], "i64[2,128]");
    assert_eq!(t["mask"], "i64[2,128]");
    assert_eq!(t["y"], "i64[2,128]");
    let mut m = parse_model(src).unwrap();
    let bad = InferOptions {
        input_shapes: vec![("nope".into(), vec![])],
    };
    let err = infer(&mut m, &bad).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("ids"), "{err}");
}

#[test]
fn squeeze_unsqueeze_by_opset() {
    let attr_form = types(
        r#"opset ai.onnx 11
        graph {
          input x: f32[1,3,1]
          output y: ?
          s = Squeeze(x) {axes=[0,2]}
          y = Unsqueeze(s) {axes=[0,-1]}
        }"#,
    );
    assert_eq!(attr_form["s"], "f32[3]");
    assert_eq!(attr_form["y"], "f32[1,3,1]");
    let input_form = types(
        r#"opset ai.onnx 13
        graph {
          input x: f32[1,3,1]
          output y: ?
          init a: i64[1] = [2]
          s = Squeeze(x, a)
          y = Unsqueeze(s, a)
        }"#,
    );
    assert_eq!(input_form["s"], "f32[1,3]");
    assert_eq!(input_form["y"], "f32[1,3,1]");
}

#[test]
fn products_and_einsum() {
    let t = types(
        r#"graph {
          input a: f32[batch,h,seq,16]
          input b: f32[batch,h,16,seq]
          input v: f32[16]
          output y: ?
          y = MatMul(a, b)
          mv = MatMul(a, v)
          e = Einsum(a, b) {equation="bhik,bhkj->bhij"}
          imp = Einsum(a) {equation="bhik"}
          g = Gemm(v2, w) {transB=1}
          init v2: f32[8,16] = random
          init w: f32[4,16] = random
        }"#,
    );
    assert_eq!(t["y"], "f32[batch,h,seq,seq]");
    assert_eq!(t["mv"], "f32[batch,h,seq]");
    assert_eq!(t["e"], "f32[batch,h,seq,seq]");
    assert_eq!(t["imp"], "f32[batch,h,seq,16]");
    assert_eq!(t["g"], "f32[8,4]");
}

#[test]
fn resize_pad_tile_range_topk() {
    let t = types(
        r#"graph {
          input x: f32[1,3,h,8]
          output y: ?
          init scales: f32[4] = [1.0, 1.0, 2.0, 2.0]
          init pads: i64[8] = [0, 0, 1, 2, 0, 0, 3, 4]
          init reps: i64[4] = [2, 1, 1, 1]
          init k: i64[1] = [5]
          init lim: i64[] = [7]
          init z: i64[] = [0]
          init d: i64[] = [2]
          y = Resize(x, "", scales) {mode="nearest"}
          p = Pad(x, pads)
          t = Tile(x, reps)
          r = Range(z, lim, d)
          v, i = TopK(x, k) {axis=-1}
        }"#,
    );
    assert_eq!(t["y"], "f32[1,3,\"2*h\",16]");
    assert_eq!(t["p"], "f32[1,3,\"h+4\",14]");
    assert_eq!(t["t"], "f32[2,3,h,8]");
    assert_eq!(t["r"], "i64[4]");
    assert_eq!(t["v"], "f32[1,3,h,5]");
    assert_eq!(t["i"], "i64[1,3,h,5]");
}

#[test]
fn if_merges_branches_and_loop_carries() {
    let t = types(
        r#"graph {
          input c: bool[]
          input x: f32[2,3]
          output y: ?
          y = If(c) {
            then_branch=graph then {
              output a: ?
              a = Relu(x)
            },
            else_branch=graph else {
              output b: ?
              init s: i64[2] = [3, 2]
              b = Reshape(x, s)
            }
          }
          init n: i64[] = [4]
          f, scan = Loop(n, "", x) {
            body=graph body {
              input i: i64[]
              input cond: bool[]
              input acc: ?
              output co: ?
              output next: ?
              output row: ?
              co = Identity(cond)
              next = Add(acc, acc)
              row = ReduceSum(acc) {keepdims=0}
            }
          }
        }"#,
    );
    assert_eq!(t["y"], "f32[?,?]");
    assert_eq!(t["f"], "f32[2,3]");
    assert_eq!(t["scan"], "f32[4]");
}

/// A carried value that grows: what the body sees (and scans out) is what holds on
/// every iteration, not the first one's shape; the body's declared types say so too.
#[test]
fn loop_and_scan_carried_values_hold_on_every_iteration() {
    let src = r#"graph {
          input x: f32[2]
          output last: ?
          output rows: ?
          output st: ?
          output seen: ?
          init n: i64[] = [3]
          last, rows = Loop(n, "", x) {
            body=graph body {
              input i: i64[]
              input cond: bool[]
              input acc: ?
              output co: ?
              output grown: ?
              output row: ?
              co = Identity(cond)
              grown = Concat(acc, x) {axis=0}
              row = Identity(acc)
            }
          }
          init xs: f32[4,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
          st, seen = Scan(x, xs) {num_scan_inputs=1,
            body=graph sbody {
              input s: ?
              input v: f32[2]
              output s2: ?
              output o: ?
              s2 = Concat(s, v) {axis=0}
              o = Identity(s)
            }
          }
        }"#;
    let t = types(src);
    assert_eq!(t["last"], "f32[?]");
    assert_eq!(t["rows"], "f32[3,?]");
    assert_eq!(t["st"], "f32[?]");
    assert_eq!(t["seen"], "f32[4,?]");
    let mut m = parse_model(src).expect("test graph parses");
    infer(&mut m, &InferOptions::default()).expect("inference runs");
    let text = whittle_ir::text::print_model(&m, &Default::default());
    assert!(text.contains("input acc: f32[?]"), "{text}");
    assert!(text.contains("input s: f32[?]"), "{text}");
}

#[test]
fn reductions_and_normalisations() {
    let t = types(
        r#"opset ai.onnx 17
        graph {
          input x: f32[batch,seq,64]
          output y: ?
          init g: f32[64] = random
          y, mean, inv = LayerNormalization(x, g) {axis=-1}
          r = ReduceMean(x) {axes=[-1], keepdims=1}
          a = ArgMax(x) {axis=1, keepdims=0}
          s = Softmax(x) {axis=-1}
        }"#,
    );
    assert_eq!(t["y"], "f32[batch,seq,64]");
    assert_eq!(t["mean"], "f32[batch,seq,1]");
    assert_eq!(t["r"], "f32[batch,seq,1]");
    assert_eq!(t["a"], "i64[batch,64]");
    assert_eq!(t["s"], "f32[batch,seq,64]");
}
