//! Compute cost per node: multiply-accumulates, FLOPs, parameters and output bytes,
//! read from the value types (run [`crate::infer::infer`] first). Costs are polynomials in
//! the symbolic dims, so a model with a `batch` dim still gets a formula.
//!
//! What is counted:
//! - MACs: Conv, ConvTranspose, ConvInteger, QLinearConv, Gemm, MatMul, MatMulInteger,
//!   QLinearMatMul, Einsum (the product of all index sizes), LSTM/GRU/RNN (gate matmuls).
//! - FLOPs: 2 × MACs, plus one per output element of every other op that computes
//!   (elementwise math, activations, normalisations, Softmax), one per window element
//!   for pools and one per input element for reductions. Ops that only move data
//!   (Reshape, Transpose, Gather, Concat, Slice, Cast, Shape, ...) count zero.

use crate::dtype::DataType;
use crate::graph::{Graph, NodeId, ValueId};
use crate::infer::{Equation, Poly};
use crate::types::{Dim, Type};

/// The cost of one node; None where a dim it depends on is unknown.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeCost {
    pub node: NodeId,
    pub macs: Option<Poly>,
    pub flops: Option<Poly>,
    /// Elements of the constant inputs (weights) the node reads.
    pub params: u64,
    /// Bytes of the node's outputs.
    pub out_bytes: Option<Poly>,
}

/// Ops that move or reinterpret data without arithmetic.
const DATA_MOVEMENT: &[&str] = &[
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Shape",
    "Size",
    "Gather",
    "GatherElements",
    "GatherND",
    "Concat",
    "Split",
    "Slice",
    "Cast",
    "CastLike",
    "Expand",
    "Tile",
    "Pad",
    "Constant",
    "ConstantOfShape",
    "Range",
    "Dropout",
    "DepthToSpace",
    "SpaceToDepth",
    "NonZero",
    "If",
    "Loop",
    "Scan",
    "ScatterND",
    "ScatterElements",
    "OneHot",
    "Resize",
    "Upsample",
    "EyeLike",
    "Compress",
    "Trilu",
];

/// The cost of every node of `g` (not of its subgraphs), in topological order.
pub fn graph_costs(g: &Graph) -> Vec<NodeCost> {
    g.nodes_in_order()
        .unwrap_or_else(|_| g.node_ids().collect())
        .into_iter()
        .map(|n| node_cost(g, n))
        .collect()
}

fn dims(g: &Graph, v: Option<ValueId>) -> Option<Vec<Dim>> {
    v.and_then(|v| g.value(v).info.ty.as_ref().and_then(Type::dims))
}

fn numel(d: &[Dim]) -> Option<Poly> {
    d.iter()
        .try_fold(Poly::constant(1), |acc, x| acc.mul(&Poly::of_dim(x)?))
}

fn dim(d: &[Dim], i: usize) -> Option<Poly> {
    d.get(i).and_then(Poly::of_dim)
}

/// The cost of node `n`.
pub fn node_cost(g: &Graph, n: NodeId) -> NodeCost {
    let node = g.node(n);
    let params = node
        .inputs()
        .iter()
        .flatten()
        .filter_map(|v| g.constant(*v))
        .filter_map(|t| t.element_count().ok())
        .sum();
    let out_bytes = node
        .outputs()
        .iter()
        .flatten()
        .try_fold(Poly::constant(0), |acc, v| {
            let ty = g.value(*v).info.ty.as_ref()?;
            let bytes = ty
                .elem()
                .and_then(|e: DataType| e.bit_width())
                .map(|b| b.div_ceil(8) as i64)?;
            acc.add(&numel(&ty.dims()?)?.scale(bytes)?)
        });
    let macs = if node.domain().is_empty() {
        macs(g, n)
    } else {
        None
    };
    let flops = flops(g, n, macs.as_ref());
    NodeCost {
        node: n,
        macs,
        flops,
        params,
        out_bytes,
    }
}

/// Multiply-accumulates of the product ops; Some(0) for everything else.
fn macs(g: &Graph, n: NodeId) -> Option<Poly> {
    let node = g.node(n);
    let inp = |i: usize| dims(g, node.input(i));
    let out = || dims(g, node.output(0));
    let prod_from = |d: &[Dim], from: usize| numel(d.get(from..)?);
    match node.op() {
        "Conv" | "ConvInteger" => numel(&out()?)?.mul(&prod_from(&inp(1)?, 1)?),
        "QLinearConv" => numel(&out()?)?.mul(&prod_from(&inp(3)?, 1)?),
        "ConvTranspose" => numel(&inp(0)?)?.mul(&prod_from(&inp(1)?, 1)?),
        "Gemm" => {
            let a = inp(0)?;
            let k = if node.attr("transA").and_then(|a| a.i).unwrap_or(0) != 0 {
                0
            } else {
                1
            };
            numel(&out()?)?.mul(&dim(&a, k)?)
        }
        "MatMul" | "MatMulInteger" => {
            numel(&out()?)?.mul(&dim(&inp(0)?, inp(0)?.len().checked_sub(1)?)?)
        }
        "QLinearMatMul" => numel(&out()?)?.mul(&dim(&inp(0)?, inp(0)?.len().checked_sub(1)?)?),
        "Einsum" => einsum_macs(g, n),
        "LSTM" | "GRU" | "RNN" => {
            let (x, w, r) = (inp(0)?, inp(1)?, inp(2)?);
            let steps = numel(&x[..2])?;
            let dirs = dim(&w, 0)?;
            let per = dim(&w, 1)?
                .mul(&dim(&w, 2)?)?
                .add(&dim(&r, 1)?.mul(&dim(&r, 2)?)?)?;
            steps.mul(&dirs)?.mul(&per)
        }
        _ => Some(Poly::constant(0)),
    }
}

fn einsum_macs(g: &Graph, n: NodeId) -> Option<Poly> {
    let node = g.node(n);
    let eq = node.attr("equation").and_then(|a| a.s.as_ref())?;
    let eq = Equation::parse(std::str::from_utf8(eq).ok()?)?;
    let shapes: Vec<Vec<Dim>> = (0..node.inputs().len())
        .map(|i| dims(g, node.input(i)))
        .collect::<Option<_>>()?;
    if shapes.len() < 2 {
        return Some(Poly::constant(0));
    }
    let refs: Vec<&[Dim]> = shapes.iter().map(Vec::as_slice).collect();
    let (sizes, ell) = eq.sizes(&refs).ok()?;
    let letters = numel(&sizes.into_values().collect::<Vec<_>>())?;
    letters.mul(&numel(&ell)?)
}

fn flops(g: &Graph, n: NodeId, macs: Option<&Poly>) -> Option<Poly> {
    let node = g.node(n);
    let op = node.op();
    let two_macs = macs?.scale(2)?;
    if two_macs.as_const().is_none_or(|c| c != 0)
        || DATA_MOVEMENT.contains(&op)
        || !node.domain().is_empty()
    {
        return Some(two_macs);
    }
    let out = || numel(&dims(g, node.output(0))?);
    if op.starts_with("Reduce") || op.starts_with("Global") || op.starts_with("Arg") {
        return numel(&dims(g, node.input(0))?);
    }
    if op.ends_with("Pool") {
        let k: i64 = node
            .attr("kernel_shape")
            .map(|a| a.ints.iter().product())
            .unwrap_or(1);
        return out()?.scale(k);
    }
    out()
}
