//! `quantize-int8-weights`: which weights it takes (and which it must leave), the listing
//! it produces, and that tract's outputs stay close on random inputs.

mod lossy;

use whittle_compress::quant::QuantizeWeights;
use whittle_eval::{InputSpec, random_inputs, run_model};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_passes::{PassCx, PassSettings, Pipeline};
use whittle_testkit::cosine;

const MODEL: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,64]
  input ids: i64[2,5]
  input img: f32[1,4,8,8]
  output y: f32[2,32]
  output e: f32[2,5,32]
  output z: f32[1,64,6,6]
  output small: f32[2,4]
  output s1: f32[2,32]
  output s2: f32[2,32]
  output g: f32[2,48]
  init w: f32[64,32] = random
  init table: f32[100,32] = random
  init k: f32[64,4,3,3] = random
  init tiny: f32[64,4] = random
  init shared: f32[64,32] = random
  init b: f32[48,64] = random
  y = MatMul(x, w)
  e = Gather(table, ids) {axis=0}
  z = Conv(img, k) {kernel_shape=[3, 3]}
  small = MatMul(x, tiny)
  s1 = MatMul(x, shared)
  s2 = MatMul(x, shared)
  g = Gemm(x, b) {transB=1}
}
";

fn quantize(src: &str, q: QuantizeWeights) -> (whittle_ir::Model, whittle_ir::Model, PassCx) {
    let original = parse_model(src).unwrap();
    let mut model = original.clone();
    let mut cx = PassCx::default();
    lossy::run(vec![Box::new(q)], &mut model, &mut cx).unwrap();
    model.graph.verify(false).unwrap();
    (original, model, cx)
}

#[test]
fn weights_become_int8_behind_dequantize_linear_and_outputs_stay_close() {
    let (original, model, cx) = quantize(MODEL, QuantizeWeights::default());
    let text = print_model(&model, &PrintOptions::default());
    let sites: Vec<&str> = cx.journal.log.iter().map(|(_, _, s)| s.as_str()).collect();
    assert_eq!(
        cx.journal.log.len(),
        4,
        "w, table, k and b; not tiny (small), not shared: {sites:?}\n{text}"
    );
    assert_eq!(cx.journal.notes.len(), 4);
    assert_eq!(text.matches("= DequantizeLinear(").count(), 4, "{text}");
    for want in [
        "init w_int8_w",
        "i8[64,32]",
        "i8[100,32]",
        "i8[64,4,3,3]",
        "i8[48,64]",
        "init tiny: f32[64,4]",
        "init shared: f32[64,32]",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    // Per-channel axes: MatMul columns (1), Conv outputs (0), Gemm transB rows (0), and
    // the gathered rows' last axis (2) after an int8 Gather.
    assert!(
        text.contains("{axis=1}") && text.contains("{axis=0}") && text.contains("{axis=2}"),
        "{text}"
    );
    assert!(
        text.contains("= Gather(table_int8"),
        "the table is gathered as int8:\n{text}"
    );
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let a = run_model(&original, "float", &inputs).unwrap();
    let b = run_model(&model, "int8", &inputs).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x.to_f32_vec().unwrap(), y.to_f32_vec().unwrap());
        let c = cosine(&x, &y);
        assert!(c > 0.9999, "cosine {c}");
    }
    // Untouched outputs are bit-identical.
    for i in [3, 4, 5] {
        assert_eq!(a[i], b[i], "output {i} reads float weights only");
    }
    for (_, note) in &cx.journal.notes {
        let e: f64 = note.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(e > 0.0 && e < 0.01, "{note}");
    }
}

#[test]
fn per_tensor_mode_and_old_opsets() {
    let q = QuantizeWeights {
        per_channel: false,
        min_elements: 1,
        ..QuantizeWeights::default()
    };
    let (_, model, cx) = quantize(MODEL, q);
    let text = print_model(&model, &PrintOptions::default());
    // shared stays (two readers); everything else, tiny included, is quantized.
    assert_eq!(cx.journal.log.len(), 5, "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("DequantizeLinear(") && l.contains("axis")),
        "per-tensor has no axis:\n{text}"
    );
    // Before opset 13 DequantizeLinear has no axis: per-channel does nothing there.
    let old = MODEL.replace("opset ai.onnx 17", "opset ai.onnx 11");
    let (_, _, cx) = quantize(&old, QuantizeWeights::default());
    assert!(cx.journal.log.is_empty());
}

#[test]
fn a_second_run_changes_nothing_and_the_pass_is_never_in_a_level() {
    let (_, mut model, _) = quantize(MODEL, QuantizeWeights::default());
    let before = print_model(&model, &PrintOptions::default());
    let mut cx = PassCx::default();
    lossy::run(
        vec![Box::new(QuantizeWeights::default())],
        &mut model,
        &mut cx,
    )
    .unwrap();
    assert!(cx.journal.log.is_empty());
    assert_eq!(print_model(&model, &PrintOptions::default()), before);
    for level in [whittle_passes::Level::O1, whittle_passes::Level::O2] {
        assert!(
            !Pipeline::for_level(level)
                .names()
                .contains(&"quantize-int8-weights")
        );
    }
}

#[test]
fn fp16_weights_are_cast_back_and_overflowing_ones_stay_f32() {
    use whittle_compress::quant::Fp16Weights;
    let src = MODEL.replace(
        "  init b: f32[48,64] = random",
        "  init b: f32[48,64] = [100000.0, ...]",
    );
    let original = parse_model(&src).unwrap();
    let mut model = original.clone();
    let mut cx = PassCx::default();
    lossy::run(vec![Box::new(Fp16Weights::default())], &mut model, &mut cx).unwrap();
    model.graph.verify(false).unwrap();
    let text = print_model(&model, &PrintOptions::default());
    // w, table, k: yes; tiny (small), shared (two readers), b (past 65504): no.
    assert_eq!(cx.journal.log.len(), 3, "{text}");
    assert_eq!(text.matches("= Cast(").count(), 3, "{text}");
    assert!(
        text.contains("f16[100,32]") && text.contains("= Gather(table_fp16"),
        "{text}"
    );
    assert!(text.contains("init b: f32[48,64]"), "{text}");
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let a = run_model(&original, "f32", &inputs).unwrap();
    let b = run_model(&model, "f16", &inputs).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let c = cosine(&x.to_f32_vec().unwrap(), &y.to_f32_vec().unwrap());
        assert!(c > 0.999999, "cosine {c}");
    }
}

#[test]
fn excluded_ops_and_nodes_keep_float_weights() {
    let original = parse_model(MODEL).unwrap();
    let mut model = original.clone();
    let mut cx = PassCx::new(PassSettings {
        deny_ops: vec!["Conv".into()],
        deny: vec![("*".into(), "<unnamed Gemm> -> g".into())],
        ..PassSettings::default()
    });
    lossy::run(
        vec![Box::new(QuantizeWeights::default())],
        &mut model,
        &mut cx,
    )
    .unwrap();
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(
        cx.journal.log.len(),
        2,
        "w and table only: {:?}\n{text}",
        cx.journal.log
    );
    assert!(text.contains("init k: f32[64,4,3,3]") && text.contains("init b: f32[48,64]"));
}

#[test]
fn fp16_computes_in_half_and_keeps_float_inputs_outputs_and_shape_arithmetic() {
    use whittle_compress::quant::Fp16Compute;
    let src = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,4,8,8]
  output y: f32[2,10]
  output n: i64[2]
  init k: f32[8,4,3,3] = random
  init fc: f32[10,8] = random
  init fb: f32[10] = random
  init big: f32[8] = [70000.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
  h = Conv(x, k) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
  r = Relu(h)
  p = GlobalAveragePool(r)
  f = Flatten(p)
  t = Mul(f, big)
  u = Div(t, big)
  z = Add(f, u)
  y = Gemm(z, fc, fb) {transB=1}
  s = Shape(f)
  sf = Cast(s) {to=1}
  half = Div(sf, sf)
  n = Cast(half) {to=7}
}
";
    let original = parse_model(src).unwrap();
    let mut model = original.clone();
    let mut cx = PassCx::default();
    lossy::run(vec![Box::new(Fp16Compute)], &mut model, &mut cx).unwrap();
    model.graph.verify(false).unwrap();
    let text = print_model(&model, &PrintOptions::default());
    for want in [
        "input x: f32[2,4,8,8]",
        "output y: f32[2,10]",
        "= Cast(x) {to=10}",
        "h: f16[2,8,8,8] = Conv(",
        "init k: f16[8,4,3,3]",
        "init fc: f16[10,8]",
        // 70000 overflows float16: the weight and its readers stay f32.
        "init big: f32[8]",
        "t: f32[2,8] = Mul(f_fp32",
        "u: f32[2,8] = Div(t, big)",
        "z: f16[2,8] = Add(f, u_fp16",
        // The Gemm's addend is a separate Add (tract cannot run a float16 Gemm with C).
        "= Add(y_product",
        "y: f32[2,10] = Cast(y_fp16) {to=1}",
        // Shape arithmetic stays float32.
        "sf: f32[2] = Cast(s) {to=1}",
        "half: f32[2] = Div(sf, sf)",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    assert!(!text.contains("Gemm(z, fc, fb)"), "{text}");
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let a = run_model(&original, "f32", &inputs).unwrap();
    let b = run_model(&model, "fp16", &inputs).unwrap();
    assert_eq!(a[1], b[1], "the integer output is exact");
    let c = cosine(&a[0].to_f32_vec().unwrap(), &b[0].to_f32_vec().unwrap());
    assert!(c > 0.999, "cosine {c}");
    // A second run finds a float16 model and leaves it alone.
    let mut again = model.clone();
    let mut cx2 = PassCx::default();
    lossy::run(vec![Box::new(Fp16Compute)], &mut again, &mut cx2).unwrap();
    assert_eq!(cx2.journal.log.len(), 0);
    assert_eq!(print_model(&again, &PrintOptions::default()), text);
}

#[test]
fn int8_weights_cast_form_reads_weights_through_cast_and_mul() {
    let (original, model, cx) = quantize(
        MODEL,
        QuantizeWeights {
            cast: true,
            ..QuantizeWeights::default()
        },
    );
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 4, "{text}");
    // MatMul, Conv and Gemm weights through Cast → Mul; the table still DequantizeLinear.
    assert_eq!(text.matches("= Cast(").count(), 3, "{text}");
    assert_eq!(text.matches("= DequantizeLinear(").count(), 1, "{text}");
    for want in ["f32[1,32] = [", "f32[64,1,1,1] = [", "f32[48,1] = ["] {
        assert!(
            text.contains(want),
            "scale broadcast {want} missing:\n{text}"
        );
    }
    let inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
    let a = run_model(&original, "float", &inputs).unwrap();
    let b = run_model(&model, "int8 cast", &inputs).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let c = cosine(&x.to_f32_vec().unwrap(), &y.to_f32_vec().unwrap());
        assert!(c > 0.9999, "cosine {c}");
    }
}

/// Embedding tables inside If branches: the gathered rows' rank comes from the branch's
/// own declarations (the main graph's facts are keyed by other value ids), every logged
/// rewrite is one that happened, and both branches still compute the same in tract.
const IN_BRANCHES: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input ids: i64[2,5]
  input c: bool[]
  input x: f32[4]
  output e: f32[2,5,32]
  output u: f32[2,5,32]
  init t0: f32[100,32] = random
  u = Gather(t0, ids) {axis=0}
  e = If(c) {
    then_branch=graph th {
      init table: f32[100,32] = random
      output a: f32[2,5,32]
      a = Gather(table, ids) {axis=0}
    },
    else_branch=graph el {
      init table2: f32[100,32] = random
      output b: f32[2,5,32]
      b = Gather(table2, ids) {axis=0}
    }
  }
}
";

#[test]
fn tables_in_subgraphs_use_their_own_ranks_and_every_logged_rewrite_happens() {
    let (original, model, cx) = quantize(IN_BRANCHES, QuantizeWeights::default());
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 3, "t0, table and table2:\n{text}");
    assert_eq!(
        text.matches("= DequantizeLinear(").count(),
        cx.journal.log.len(),
        "{text}"
    );
    assert_eq!(cx.journal.notes.len(), cx.journal.log.len());
    assert_eq!(
        text.matches("{axis=2}").count(),
        3,
        "rows' last axis:\n{text}"
    );
    for cond in [true, false] {
        let mut inputs = random_inputs(&original.graph, &InputSpec::default()).unwrap();
        inputs[1] = whittle_ir::Tensor::from_raw(
            whittle_ir::DataType::Bool,
            vec![],
            bytes::Bytes::from(vec![u8::from(cond)]),
        );
        let a = run_model(&original, "float", &inputs).unwrap();
        let b = run_model(&model, "int8", &inputs).unwrap();
        let c = cosine(&a[0].to_f32_vec().unwrap(), &b[0].to_f32_vec().unwrap());
        assert!(c > 0.9999, "branch {cond}: cosine {c}");
    }
}

/// A Gather whose rows' rank nothing can tell (ids of unknown rank) is left alone per
/// channel, and not logged: before, the rewrite was granted (and logged, shifting every
/// later index `--bisect-limit` and `--verify` count) and then skipped.
#[test]
fn a_table_whose_rows_have_no_known_rank_is_neither_rewritten_nor_logged() {
    let src = IN_BRANCHES
        .replace("input ids: i64[2,5]", "input ids: i64")
        .replace(": f32[2,5,32]", ": f32");
    let (_, model, cx) = quantize(&src, QuantizeWeights::default());
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 0, "{:?}\n{text}", cx.journal.log);
    assert!(cx.journal.notes.is_empty());
    assert_eq!(text.matches("= DequantizeLinear(").count(), 0, "{text}");
    // Per tensor needs no axis: all three are taken.
    let per_tensor = QuantizeWeights {
        per_channel: false,
        ..QuantizeWeights::default()
    };
    let (_, model, cx) = quantize(&src, per_tensor);
    let text = print_model(&model, &PrintOptions::default());
    assert_eq!(cx.journal.log.len(), 3, "{text}");
    assert_eq!(text.matches("= DequantizeLinear(").count(), 3, "{text}");
}

#[test]
fn fp16_output_also_read_in_float32_gets_one_cast_back() {
    // A KV-cache export's present key is an output and is read by float32 arithmetic in
    // the graph: both readers share one Cast back, so node names stay unique (ORT refuses
    // two nodes of one name).
    use whittle_compress::quant::Fp16Compute;
    let src = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[2,8]
  output y: f32[2,8]
  output n: i64[2]
  init w: f32[2,8] = random
  y = Add(x, w)
  n = Shape(y)
}
";
    // Shape stays a float32 reader: it reads y through a Cast back.
    let base = parse_model(src).unwrap();
    let mut model = base.clone();
    let mut cx = PassCx::default();
    lossy::run(vec![Box::new(Fp16Compute)], &mut model, &mut cx).unwrap();
    model.graph.verify(false).unwrap();
    let g = &model.graph;
    let names: Vec<&str> = g
        .node_ids()
        .map(|n| g.node(n).name())
        .filter(|n| !n.is_empty())
        .collect();
    let unique: std::collections::HashSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    let text = print_model(&model, &PrintOptions::default());
    assert!(text.contains("y: f32[2,8] = Cast(y_fp16) {to=1}"), "{text}");
    assert!(text.contains("n: i64[2] = Shape(y)"), "{text}");
    let inputs = random_inputs(&base.graph, &InputSpec::default()).unwrap();
    let a = run_model(&base, "f32", &inputs).unwrap();
    let b = run_model(&model, "fp16", &inputs).unwrap();
    assert_eq!(a[1], b[1]);
    let c = cosine(&a[0].to_f32_vec().unwrap(), &b[0].to_f32_vec().unwrap());
    assert!(c > 0.999, "cosine {c}");
}
