//! `MatMul + Add(bias)` on 2-D operands becomes one `Gemm`.

use crate::guard::{constant, dims, elem, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{DataType, Dim, Graph, Node, NodeId, ValueId};

/// `y = Add(MatMul(..), c)` at Add `n` (either operand order), c a constant.
pub(super) struct MatMulPlus {
    pub(super) matmul: NodeId,
    pub(super) c: ValueId,
    pub(super) y: ValueId,
}

/// The MatMul plus a constant that Add `n` computes, when the MatMul's result feeds only
/// that Add.
pub(super) fn matmul_plus_constant(g: &Graph, n: NodeId) -> Option<MatMulPlus> {
    let add = g.node(n);
    if !is_op(add, "Add") {
        return None;
    }
    let y = add.output(0)?;
    let (p, q) = (add.input(0)?, add.input(1)?);
    let (m, c) = if constant(g, Some(q)).is_some() {
        (p, q)
    } else {
        (q, p)
    };
    let (mm, _) = g.value(m).producer()?;
    (is_op(g.node(mm), "MatMul") && single_use(g, m)).then_some(MatMulPlus { matmul: mm, c, y })
}

/// y = Add(MatMul(A, B), C) (either Add operand order) becomes Gemm(A, B, C).
///
/// Guards: A is 2-D and B is a 2-D constant (Gemm has no batch dims); C is a constant of
/// shape [N] or [1, N] (Gemm broadcasts C to [M, N] the same way Add does); all f32; the
/// MatMul result feeds only the Add.
pub struct MatMulAddToGemm;

impl Rule for MatMulAddToGemm {
    fn name(&self) -> &'static str {
        "matmul-add-to-gemm"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let MatMulPlus { matmul: mm, c, y } = matmul_plus_constant(g, n)?;
        let matmul = g.node(mm);
        let (a, b) = (matmul.input(0)?, matmul.input(1)?);
        let bt = constant(g, Some(b))?;
        let ct = constant(g, Some(c))?;
        if dims(g, a)?.len() != 2 || bt.dims.len() != 2 {
            return None;
        }
        let nn = bt.dims[1];
        if !(ct.dims == [nn] || ct.dims == [1, nn]) {
            return None;
        }
        if [elem(g, a)?, bt.dtype(), ct.dtype()]
            .iter()
            .any(|e| *e != DataType::Float)
        {
            return None;
        }
        if dims(g, y).is_some_and(|d| d.len() != 2 || d[1] != Dim::Known(nn)) {
            return None;
        }
        let name = matmul.name.clone();
        Some(Box::new(move |g: &mut Graph| {
            g.remove_node(n);
            let mut gemm = Node::new("Gemm");
            gemm.name = name;
            g.add_node_at(mm, gemm, vec![Some(a), Some(b), Some(c)], vec![Some(y)])?;
            g.remove_node(mm);
            Ok(())
        }))
    }
}
