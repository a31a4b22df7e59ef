//! Small edits rules share: bypassing a node, forwarding a value's readers, dropping a
//! weight a rewrite replaced. (The read-only guards are in [`crate::guard`].)

use whittle_ir::{Graph, IrError, Node, NodeId, ValueId};

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
