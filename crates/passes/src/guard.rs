//! Guards shared by rules: read-only questions about the graph (what op produces a
//! value, whether it has one reader, which constant it holds). The small edits rules
//! share live in [`crate::edit`].

use whittle_ir::types::Type;
use whittle_ir::{DataType, Dim, Graph, Node, NodeId, Tensor, ValueId};

/// Ops whose result is not a function of their inputs: never folded or merged.
pub const RANDOM_OPS: &[&str] = &[
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Bernoulli",
    "Multinomial",
];

/// True for `op` of the default domain.
pub fn is_op(node: &Node, op: &str) -> bool {
    node.op() == op && node.domain().is_empty()
}

/// The node producing `v`, if it is `op`.
pub fn producer_op(g: &Graph, v: ValueId, op: &str) -> Option<NodeId> {
    let (p, _) = g.value(v).producer()?;
    is_op(g.node(p), op).then_some(p)
}

/// True when `v` is read by exactly one node slot and is not a graph output: a rewrite
/// may then change how it is computed or remove it.
pub fn single_use(g: &Graph, v: ValueId) -> bool {
    g.value(v).uses().len() == 1 && !g.is_output(v)
}

/// The constant tensor of `v`: an initializer that is not a graph input.
pub fn constant(g: &Graph, v: Option<ValueId>) -> Option<&Tensor> {
    g.constant(v?)
}

/// The dims of `v` as inferred or declared.
pub fn dims(g: &Graph, v: ValueId) -> Option<Vec<Dim>> {
    g.value(v).info.ty.as_ref().and_then(Type::dims)
}

/// The element type of `v` as inferred or declared.
pub fn elem(g: &Graph, v: ValueId) -> Option<DataType> {
    g.value(v).info.ty.as_ref().and_then(Type::elem)
}

/// The values of a small constant integer tensor.
pub fn const_ints(g: &Graph, v: Option<ValueId>) -> Option<Vec<i64>> {
    constant(g, v)?.to_i64_vec().ok()
}

/// True when the constant `v` holds only `x` (float, integer or bool as 0/1).
pub fn const_all(g: &Graph, v: ValueId, x: f64) -> bool {
    let Some(t) = g.constant(v) else { return false };
    match t.dtype() {
        DataType::Float | DataType::Double => t
            .to_f32_vec()
            .is_ok_and(|v| v.iter().all(|e| *e as f64 == x)),
        DataType::Int64 | DataType::Int32 => t
            .to_i64_vec()
            .is_ok_and(|v| v.iter().all(|e| *e as f64 == x)),
        DataType::Bool => t
            .le_bytes()
            .is_ok_and(|b| b.iter().all(|e| f64::from(u8::from(*e != 0)) == x)),
        _ => false,
    }
}
