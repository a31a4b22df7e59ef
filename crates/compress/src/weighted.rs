//! "An op with a constant, private weight": the one matcher the lossy steps start from.
//! Quantization (every mode) and decomposition ask it which input of which op is the
//! weight, along which axis its output channels run, and whether the weight is theirs to
//! rewrite; each then adds the geometry it needs.

use whittle_ir::{DataType, Graph, NodeId, ValueId};
use whittle_passes::guard::is_op;

/// Where an op keeps its weight and along which axis its output channels run:
///
/// | op | weight | channel axis |
/// |---|---|---|
/// | MatMul | input 1, rank ≥ 2 | last (output columns) |
/// | Gemm | input B, rank 2 | 0 with transB=1, else 1 |
/// | Conv | input W, rank ≥ 3 | 0 |
/// | ConvTranspose | input W, rank ≥ 3 | 1 |
/// | Gather (axis 0) | input 0, rank 2 (embedding table) | 1 |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightSlot {
    /// The input that holds the weight.
    pub slot: usize,
    /// The weight's output-channel axis.
    pub axis: usize,
    /// An embedding table read by a Gather (its rows are gathered, not multiplied).
    pub gather: bool,
}

/// The weight node `n` reads, if its op is a default-domain weighted op with a constant
/// weight of a rank the table allows (whether the weight is private is
/// [`private_weight`]'s question).
pub fn weight_slot(g: &Graph, n: NodeId) -> Option<WeightSlot> {
    let node = g.node(n);
    let w = g.constant(node.input(if is_op(node, "Gather") { 0 } else { 1 })?)?;
    let rank = w.dims.len();
    let attr = |name: &str| node.attr(name).and_then(|a| a.i).unwrap_or(0);
    let (slot, axis, gather) = match node.op() {
        _ if !node.domain().is_empty() => return None,
        "MatMul" if rank >= 2 => (1, rank - 1, false),
        "Gemm" if rank == 2 => (1, if attr("transB") == 1 { 0 } else { 1 }, false),
        "Conv" if rank >= 3 => (1, 0, false),
        "ConvTranspose" if rank >= 3 => (1, 1, false),
        "Gather" if rank == 2 && attr("axis") == 0 => (0, 1, true),
        _ => return None,
    };
    Some(WeightSlot { slot, axis, gather })
}

/// True when `v` is an f32 initializer a rewrite may replace: read by one node only, not
/// a graph input (overridable at run time before IR 4) or output, with at least
/// `min_elements` elements (1 at least).
pub fn private_weight(g: &Graph, v: ValueId, min_elements: u64) -> bool {
    let val = g.value(v);
    let Some(w) = val.initializer() else {
        return false;
    };
    w.dtype() == DataType::Float
        && !g.inputs().contains(&v)
        && val.uses().len() == 1
        && !g.is_output(v)
        && w.element_count().is_ok_and(|c| c >= min_elements.max(1))
}

/// [`private_weight`] of exactly `rank` dims.
pub fn private_weight_of_rank(g: &Graph, v: ValueId, rank: usize) -> bool {
    private_weight(g, v, 1)
        && g.value(v)
            .initializer()
            .is_some_and(|t| t.dims.len() == rank)
}
