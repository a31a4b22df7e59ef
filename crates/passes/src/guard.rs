//! Guards and small edits shared by rules.

use whittle_ir::types::Type;
use whittle_ir::{DataType, Dim, Graph, IrError, Node, NodeId, Tensor, ValueId};

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

/// Removes node `n` whose output `y` becomes `x`: readers of `y` read `x`. When `y` is a
/// graph output its name is the interface: `x` takes the name if it can (a node result
/// of this graph that is not itself an output), else an Identity keeps it.
pub fn bypass(g: &mut Graph, n: NodeId, y: ValueId, x: ValueId) -> Result<(), IrError> {
    g.remove_node(n);
    forward(g, y, x)
}

/// Readers of `y` (which nothing defines any more) read `x` instead; a graph output `y`
/// keeps its name as [`bypass`] describes.
pub fn forward(g: &mut Graph, y: ValueId, x: ValueId) -> Result<(), IrError> {
    if !g.is_output(y) {
        g.replace_all_uses(y, x);
        return Ok(());
    }
    let xv = g.value(x);
    let can_rename =
        xv.producer().is_some() && !g.is_output(x) && !g.inputs().contains(&x) && !xv.is_outer();
    if can_rename {
        let name = g.value(y).name().to_string();
        let info = g.value(y).info.clone();
        g.replace_all_uses(y, x);
        g.rename_value(x, &name)?;
        g.value_mut(x).info = info;
        return Ok(());
    }
    g.add_node(Node::new("Identity"), vec![Some(x)], vec![Some(y)])?;
    Ok(())
}

/// Removes the initializer `v` once nothing reads it (a rewrite replaced it), so its
/// memory can go back to the OS now rather than after the pass.
pub fn drop_if_unused(g: &mut Graph, v: ValueId) {
    let val = g.value(v);
    if val.initializer().is_some()
        && val.uses().is_empty()
        && !g.is_output(v)
        && !g.inputs().contains(&v)
    {
        g.remove_initializer(v);
    }
}
