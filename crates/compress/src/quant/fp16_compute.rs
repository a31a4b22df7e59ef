//! `quantize-fp16`: the model computes in float16; graph inputs and outputs stay float32.

use bytes::Bytes;
use half::f16;
use std::collections::{HashMap, HashSet};
use whittle_ir::infer::Inference;
use whittle_ir::{
    Attribute, DataType, Graph, IrError, Node, NodeId, Slot, Tensor, TypeKind, ValueId,
};
use whittle_passes::pass::{Grant, Pass, PassCx, PassError, anchor};

/// Every float32 value of the main graph becomes float16, except around the ops that
/// must stay float32 ([`KEEP_F32`], ops of other domains, ops with subgraphs, and those
/// excluded with `--exclude op:`); `Cast` nodes go where the two meet. Float32 graph
/// inputs are cast on entry; float32 graph outputs keep their names and types through a
/// final `Cast` (the float16 value is renamed `<name>_fp16`). Float initializers become
/// float16 when every value is finite and within ±65504 (others stay float32, and so
/// does every node reading them); `Constant`/`ConstantOfShape` values and
/// `to`/`dtype` attributes that say float32 follow.
///
/// Guards: runs once on the main graph; a model that already holds float16 values is
/// left alone; values whose type inference does not know are not touched (a node
/// reading one stays float32).
pub struct Fp16Compute;

/// Ops that keep computing in float32: their float inputs are cast back. Range-, index-
/// and sort-like ops (float16 loses the integers or the order they compute on), the
/// random ops, resampling (its scales must be float32), and quantization ops.
pub const KEEP_F32: &[&str] = &[
    "Resize",
    "Upsample",
    "Range",
    "CumSum",
    "TopK",
    "NonMaxSuppression",
    "RoiAlign",
    "Min",
    "Max",
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "QLinearConv",
    "QLinearMatMul",
];

impl Pass for Fp16Compute {
    fn name(&self) -> &'static str {
        "quantize-fp16"
    }

    fn description(&self) -> &'static str {
        "compute in float16, float32 inputs and outputs kept (lossy; --quantize fp16)"
    }

    fn phase(&self) -> whittle_ir::Phase {
        whittle_ir::Phase::Lossy
    }

    fn run(&self, g: &mut Graph, is_subgraph: bool, cx: &mut PassCx) -> Result<bool, PassError> {
        if is_subgraph {
            return Ok(false);
        }
        let err = |source| PassError::Ir {
            pass: "quantize-fp16",
            source,
        };
        let Some(facts) = cx.facts.take() else {
            return Ok(false);
        };
        let result = convert(g, &facts, cx).map_err(err);
        cx.facts = Some(facts);
        result
    }
}

/// The precision plan of one conversion and the casts made so far.
struct Plan<'a> {
    facts: &'a Inference,
    /// Values that hold float16 once converted.
    half: HashSet<ValueId>,
    /// (value, to float16?) → the value cast to that type.
    casts: HashMap<(ValueId, bool), ValueId>,
}

impl Plan<'_> {
    fn is_f32(&self, v: ValueId) -> bool {
        self.facts
            .fact(v)
            .is_some_and(|f| f.elem == Some(DataType::Float))
    }
}

fn convert(g: &mut Graph, facts: &Inference, cx: &mut PassCx) -> Result<bool, IrError> {
    let order = g.nodes_in_order()?;
    let any_half = g.value_ids().any(|v| {
        facts
            .fact(v)
            .is_some_and(|f| f.elem == Some(DataType::Float16))
    });
    if any_half {
        return Ok(false);
    }
    let mut plan = Plan {
        facts,
        half: HashSet::new(),
        casts: HashMap::new(),
    };
    let shapes = shape_arithmetic(g, &order);
    let chosen: Vec<NodeId> = order
        .iter()
        .copied()
        .filter(|n| !shapes.contains(n) && computes_f16(g, *n, &plan, cx))
        .collect();
    let total = g.node_count();
    let mut granted = HashSet::new();
    for n in &chosen {
        match cx.grant("quantize-fp16", "fp16", &anchor(g, *n)) {
            Grant::Yes => {
                granted.insert(*n);
            }
            Grant::Denied => {}
            Grant::Spent => break,
        }
    }
    if granted.is_empty() {
        return Ok(false);
    }
    convert_initializers(g, &granted, &mut plan);
    for n in order {
        if granted.contains(&n) {
            to_half(g, n, &mut plan)?;
        } else {
            keep_float(g, n, &mut plan)?;
        }
    }
    restore_outputs(g, &plan)?;
    cx.journal.notes.push((
        "graph".into(),
        format!(
            "fp16: {} of {total} nodes compute in float16 ({} kept float32 as shape \
             arithmetic), {} casts",
            granted.len(),
            shapes.len(),
            plan.casts.len()
        ),
    ));
    Ok(true)
}

/// The nodes that compute shapes rather than data: Shape and Size, and every node whose
/// non-constant inputs all come from such nodes (e.g. Shape → Gather → Cast → Mul →
/// Floor → Cast). They stay float32: float16 holds integers exactly only up to 2048.
fn shape_arithmetic(g: &Graph, order: &[NodeId]) -> HashSet<NodeId> {
    let mut tainted: HashSet<ValueId> = HashSet::new();
    let mut nodes = HashSet::new();
    for n in order {
        let node = g.node(*n);
        let live: Vec<ValueId> = node
            .inputs()
            .iter()
            .flatten()
            .copied()
            .filter(|v| g.constant(*v).is_none())
            .collect();
        let shape = matches!(node.op(), "Shape" | "Size") && node.domain().is_empty();
        if shape || (!live.is_empty() && live.iter().all(|v| tainted.contains(v))) {
            nodes.insert(*n);
            tainted.extend(node.outputs().iter().flatten().copied());
        }
    }
    nodes
}

/// True when node `n` can compute in float16: a default-domain op not in [`KEEP_F32`],
/// without subgraphs, not excluded, that reads or writes float32 and whose float inputs
/// and outputs all have known types.
fn computes_f16(g: &Graph, n: NodeId, plan: &Plan, cx: &PassCx) -> bool {
    let node = g.node(n);
    if !node.domain().is_empty()
        || KEEP_F32.contains(&node.op())
        || node.has_subgraphs()
        || cx.settings.deny_ops.iter().any(|o| o == node.op())
    {
        return false;
    }
    let known = |v: &ValueId| plan.facts.fact(*v).is_some_and(|f| f.elem.is_some());
    let ins: Vec<ValueId> = node.inputs().iter().flatten().copied().collect();
    let outs: Vec<ValueId> = node.outputs().iter().flatten().copied().collect();
    // A float constant float16 cannot hold keeps its reader float32 (casting it would
    // give infinities).
    let fits = |v: &ValueId| {
        g.constant(*v)
            .filter(|t| t.dtype() == DataType::Float)
            .is_none_or(|t| t.to_f32_vec().is_ok_and(|x| x.iter().all(|x| fits_f16(*x))))
    };
    ins.iter().chain(&outs).all(known)
        && ins.iter().chain(&outs).any(|v| plan.is_f32(*v))
        && ins.iter().all(fits)
        && float_attrs_convertible(node)
}

/// Attributes that fix a float32 type must be convertible: `to`/`dtype` any value, a
/// `Constant`'s or `ConstantOfShape`'s tensor within float16's range; a float32 output
/// implied by a missing attribute (ConstantOfShape without `value`) or by a float
/// attribute (`Constant` with `value_float(s)`) keeps the node float32.
fn float_attrs_convertible(node: &Node) -> bool {
    let implied = match node.op() {
        "ConstantOfShape" => node.attr("value").is_none(),
        "Constant" => node.attr("value_float").is_some() || node.attr("value_floats").is_some(),
        _ => false,
    };
    !implied
        && node.attributes.iter().all(|a| match &a.t {
            Some(t) if t.dtype() == DataType::Float => {
                t.to_f32_vec().is_ok_and(|v| v.iter().all(|x| fits_f16(*x)))
            }
            _ => true,
        })
}

fn fits_f16(x: f32) -> bool {
    x.is_finite() && x.abs() <= f16::MAX.to_f32()
}

/// Float32 initializers read only by float16 nodes become float16 (when they fit).
fn convert_initializers(g: &mut Graph, granted: &HashSet<NodeId>, plan: &mut Plan) {
    let inits: Vec<ValueId> = g.initializers().to_vec();
    for v in inits {
        if g.inputs().contains(&v) || g.is_output(v) || !plan.is_f32(v) {
            continue;
        }
        let readers_half = g
            .value(v)
            .uses()
            .iter()
            .all(|u| matches!(u.slot, Slot::Input(_)) && granted.contains(&u.node));
        if !readers_half || g.value(v).uses().is_empty() {
            continue;
        }
        let Some(t) = g.value(v).initializer() else {
            continue;
        };
        let Ok(values) = t.to_f32_vec() else { continue };
        if !values.iter().all(|x| fits_f16(*x)) {
            continue;
        }
        let half = half_tensor(t.dims.clone(), &values);
        g.set_initializer(v, half);
        set_elem(g, v, DataType::Float16);
        plan.half.insert(v);
    }
}

fn half_tensor(dims: Vec<i64>, values: &[f32]) -> Tensor {
    let raw: Vec<u8> = values
        .iter()
        .flat_map(|x| f16::from_f32(*x).to_le_bytes())
        .collect();
    Tensor::from_raw(DataType::Float16, dims, Bytes::from(raw))
}

/// Node `n` computes in float16: float32 inputs are cast, float outputs become float16,
/// attributes that name float32 say float16.
fn to_half(g: &mut Graph, n: NodeId, plan: &mut Plan) -> Result<(), IrError> {
    let inputs: Vec<Option<ValueId>> = g.node(n).inputs().to_vec();
    for (slot, v) in inputs.iter().enumerate() {
        let Some(v) = *v else { continue };
        if plan.is_f32(v) && !plan.half.contains(&v) {
            let c = cast(g, n, v, true, plan)?;
            g.set_input(n, slot, Some(c));
        }
    }
    let node = g.node_mut(n);
    for a in node.attributes.iter_mut() {
        retype_attr(a);
    }
    let outs: Vec<ValueId> = g.node(n).outputs().iter().flatten().copied().collect();
    for v in outs {
        if plan.is_f32(v) {
            set_elem(g, v, DataType::Float16);
            plan.half.insert(v);
        }
    }
    if let Some(product) = split_gemm_addend(g, n)? {
        plan.half.insert(product);
    }
    Ok(())
}

/// A float16 `Gemm` with an addend C and beta = 1 becomes `Gemm(A, B)` then `Add(·, C)`:
/// tract 0.23 computes beta·C in float32 and rejects a float16 Gemm with C ("Output
/// mismatch after rewiring expansion"); ONNX Runtime fuses the pair back.
fn split_gemm_addend(g: &mut Graph, n: NodeId) -> Result<Option<ValueId>, IrError> {
    let node = g.node(n).clone();
    let beta = node.attr("beta").and_then(|a| a.f).unwrap_or(1.0);
    if !whittle_passes::guard::is_op(&node, "Gemm") || beta != 1.0 {
        return Ok(None);
    }
    let (Some(a), Some(b), Some(c), Some(y)) =
        (node.input(0), node.input(1), node.input(2), node.output(0))
    else {
        return Ok(None);
    };
    let product = g.fresh_value(&format!("{}_product", g.value(y).name()));
    let mut gemm = Node::new("Gemm").with_name(node.name().to_string());
    for attr in node.attributes.iter().filter(|x| x.name() != "beta") {
        gemm = gemm.with_attr(attr.clone());
    }
    g.remove_node(n);
    let at = g.add_node(gemm, vec![Some(a), Some(b)], vec![Some(product)])?;
    g.add_node_at(
        at,
        Node::new("Add").with_name(format!("{}_addend", node.name())),
        vec![Some(product), Some(c)],
        vec![Some(y)],
    )?;
    Ok(Some(product))
}

/// `to`/`dtype` = float32 → float16; a float32 tensor attribute → float16.
fn retype_attr(a: &mut Attribute) {
    let float = i64::from(DataType::Float.code());
    if matches!(a.name(), "to" | "dtype") && a.i == Some(float) {
        a.i = Some(i64::from(DataType::Float16.code()));
    }
    if let Some(t) = a.t.as_mut()
        && t.dtype() == DataType::Float
        && let Ok(v) = t.to_f32_vec()
    {
        **t = half_tensor(t.dims.clone(), &v);
    }
}

/// Node `n` stays float32: inputs already converted to float16 are cast back.
fn keep_float(g: &mut Graph, n: NodeId, plan: &mut Plan) -> Result<(), IrError> {
    let inputs: Vec<Option<ValueId>> = g.node(n).inputs().to_vec();
    for (slot, v) in inputs.iter().enumerate() {
        let Some(v) = *v else { continue };
        if plan.half.contains(&v) {
            let c = cast(g, n, v, false, plan)?;
            g.set_input(n, slot, Some(c));
        }
    }
    Ok(())
}

/// `v` cast to float16 (or back to float32), made once and shared by every reader.
fn cast(
    g: &mut Graph,
    anchor: NodeId,
    v: ValueId,
    to_half: bool,
    plan: &mut Plan,
) -> Result<ValueId, IrError> {
    if let Some(c) = plan.casts.get(&(v, to_half)) {
        return Ok(*c);
    }
    let name = g.value(v).name().to_string();
    let (suffix, ty) = if to_half {
        ("fp16", DataType::Float16)
    } else {
        ("fp32", DataType::Float)
    };
    let out = g.fresh_value(&format!("{name}_{suffix}"));
    g.add_node_at(
        anchor,
        Node::new("Cast")
            .with_name(format!("{name}_to_{suffix}"))
            .with_attr(Attribute::int("to", i64::from(ty.code()))),
        vec![Some(v)],
        vec![Some(out)],
    )?;
    plan.casts.insert((v, to_half), out);
    Ok(out)
}

/// Graph outputs now float16 get a final Cast to float32 under their own name (the one
/// already made for a float32 reader, if any: node names stay unique).
fn restore_outputs(g: &mut Graph, plan: &Plan) -> Result<(), IrError> {
    let outputs: Vec<ValueId> = g.outputs().to_vec();
    let mut new_outputs = outputs.clone();
    for (k, v) in outputs.iter().enumerate() {
        if !plan.half.contains(v) {
            continue;
        }
        let name = g.value(*v).name().to_string();
        let inner = free_name(g, &format!("{name}_fp16"));
        let info = g.value(*v).info.clone();
        g.rename_value(*v, &inner)?;
        if let Some(&back) = plan.casts.get(&(*v, false)) {
            // A float32 reader inside the graph already has a Cast back (KV-cache exports
            // read their present keys): that Cast becomes the output, under its name.
            g.rename_value(back, &name)?;
            g.value_mut(back).info = info;
            set_elem(g, back, DataType::Float);
            new_outputs[k] = back;
            continue;
        }
        let out = g.intern(&name);
        g.value_mut(out).info = info;
        set_elem(g, out, DataType::Float);
        g.add_node(
            Node::new("Cast")
                .with_name(format!("{name}_to_fp32"))
                .with_attr(Attribute::int("to", i64::from(DataType::Float.code()))),
            vec![Some(*v)],
            vec![Some(out)],
        )?;
        new_outputs[k] = out;
    }
    g.set_outputs(new_outputs);
    Ok(())
}

fn free_name(g: &Graph, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while g.find(&name).is_some() {
        name = format!("{base}{k}");
        k += 1;
    }
    name
}

/// Sets the element type of `v`'s declared type, if it has one.
fn set_elem(g: &mut Graph, v: ValueId, to: DataType) {
    if let Some(ty) = g.value_mut(v).info.ty.as_mut()
        && let TypeKind::Tensor { elem, .. } = &mut ty.kind
    {
        *elem = Some(to);
    }
}
