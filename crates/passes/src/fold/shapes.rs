//! `fold-shapes`: integer values shape inference computed (Shape → Gather → Concat ...)
//! become initializers, with no evaluation at all. Symbolic values stay computed, so
//! dynamic dims stay dynamic.

use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::infer::Fact;
use whittle_ir::{DataType, Dim, Graph, NodeId, Tensor, ValueId};

/// Replaces a node whose every output is a fully known small integer tensor.
pub struct FoldShapes;

fn tensor_of(f: &Fact) -> Option<Tensor> {
    let ints = f.ints()?;
    let dims: Vec<i64> = f
        .dims
        .as_ref()?
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Some(*n),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if dims.iter().product::<i64>() != ints.len() as i64 {
        return None;
    }
    match f.elem? {
        DataType::Int64 => Some(Tensor::from_i64(dims, &ints)),
        DataType::Int32 => {
            let raw: Vec<u8> = ints
                .iter()
                .map(|v| i32::try_from(*v).ok())
                .collect::<Option<Vec<i32>>>()?
                .into_iter()
                .flat_map(i32::to_le_bytes)
                .collect();
            Some(Tensor::from_raw(DataType::Int32, dims, raw.into()))
        }
        _ => None,
    }
}

impl Rule for FoldShapes {
    fn name(&self) -> &'static str {
        "fold-shape-values"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let facts = cx.facts?;
        let node = g.node(n);
        if !node.domain().is_empty() || node.has_subgraphs() || node.op() == "Constant" {
            return None;
        }
        let outs: Vec<ValueId> = node.outputs().iter().flatten().copied().collect();
        if outs.is_empty() || outs.iter().any(|v| g.is_output(*v)) {
            return None;
        }
        let folded: Vec<(ValueId, Tensor)> = outs
            .iter()
            .map(|v| {
                let mut t = tensor_of(facts.fact(*v)?)?;
                t.name = Some(g.value(*v).name().to_string());
                Some((*v, t))
            })
            .collect::<Option<_>>()?;
        Some(Box::new(move |g: &mut Graph| {
            g.remove_node(n);
            for (v, t) in folded {
                g.set_initializer(v, t);
            }
            Ok(())
        }))
    }
}
