//! More chains that collapse: idempotent ops applied twice, Squeeze after Squeeze, Slice
//! after Slice on other axes, and Transpose feeding a 2-D Gemm operand.

use crate::edit::bypass;
use crate::guard::{const_ints, constant, dims, is_op, producer_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{Graph, NodeId, Tensor};

/// Ops f with f(f(x)) = f(x).
const IDEMPOTENT: &[&str] = &["Relu", "Abs", "Floor", "Ceil", "Round", "Sign"];

/// f(f(x)) = f(x) for idempotent f: the outer node goes, its readers read the inner one.
pub struct Idempotent;

impl Rule for Idempotent {
    fn name(&self) -> &'static str {
        "idempotent"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !outer.domain().is_empty() || !IDEMPOTENT.contains(&outer.op()) {
            return None;
        }
        let (t, y) = (outer.input(0)?, outer.output(0)?);
        producer_op(g, t, outer.op())?;
        Some(Box::new(move |g: &mut Graph| bypass(g, n, y, t)))
    }
}

/// Gemm(Transpose(A), B) = Gemm(A, B) with transA flipped (likewise for B). Guards: the
/// Transpose swaps the two axes of a 2-D tensor and feeds only this Gemm.
pub struct TransposeIntoGemm;

impl Rule for TransposeIntoGemm {
    fn name(&self) -> &'static str {
        "transpose-into-gemm"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let gemm = g.node(n);
        if !is_op(gemm, "Gemm") {
            return None;
        }
        for (slot, attr) in [(0usize, "transA"), (1, "transB")] {
            let t = gemm.input(slot)?;
            let Some((tp, _)) = g.value(t).producer() else {
                continue;
            };
            let tn = g.node(tp);
            let swaps = tn
                .attr("perm")
                .is_none_or(|a| a.ints[..] == [1, 0] || a.ints.is_empty());
            let two_d = tn
                .input(0)
                .and_then(|x| dims(g, x))
                .is_some_and(|d| d.len() == 2);
            if !is_op(tn, "Transpose") || !swaps || !two_d || !single_use(g, t) {
                continue;
            }
            let x = tn.input(0)?;
            let flipped = 1 - gemm.attr(attr).and_then(|a| a.i).unwrap_or(0).clamp(0, 1);
            return Some(Box::new(move |g: &mut Graph| {
                g.set_input(n, slot, Some(x));
                g.node_mut(n).set_attr(Attribute::int(attr, flipped));
                g.remove_node(tp);
                Ok(())
            }));
        }
        None
    }
}

/// Squeeze(Squeeze(x, a), b) = Squeeze(x, c) with c the original positions of every
/// removed axis. Guards: constant axes (attribute before opset 13), x's rank known, the
/// inner result feeds only the outer Squeeze.
pub struct SqueezeChain;

fn squeeze_axes(g: &Graph, n: NodeId, opset: i64) -> Option<Vec<i64>> {
    let node = g.node(n);
    let a = if opset < 13 {
        node.attr("axes")?.ints.to_vec()
    } else {
        const_ints(g, node.input(1))?
    };
    (!a.is_empty()).then_some(a)
}

impl Rule for SqueezeChain {
    fn name(&self) -> &'static str {
        "squeeze-chain"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Squeeze") {
            return None;
        }
        let t = outer.input(0)?;
        let inner = producer_op(g, t, "Squeeze")?;
        if !single_use(g, t) {
            return None;
        }
        let x = g.node(inner).input(0)?;
        let r = dims(g, x)?.len() as i64;
        let norm = |a: i64, rank: i64| if a < 0 { a + rank } else { a };
        let first: Vec<i64> = squeeze_axes(g, inner, cx.opset)?
            .into_iter()
            .map(|a| norm(a, r))
            .collect();
        let kept: Vec<i64> = (0..r).filter(|i| !first.contains(i)).collect();
        let rr = kept.len() as i64;
        let mut all = first.clone();
        for b in squeeze_axes(g, n, cx.opset)? {
            all.push(*kept.get(usize::try_from(norm(b, rr)).ok()?)?);
        }
        all.sort_unstable();
        all.dedup();
        let opset = cx.opset;
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 0, Some(x));
            if opset < 13 {
                g.node_mut(n).set_attr(Attribute::ints("axes", all));
            } else {
                let c = g.add_initializer(
                    "squeeze_axes",
                    Tensor::from_i64(vec![all.len() as i64], &all),
                );
                g.set_input(n, 1, Some(c));
            }
            g.remove_node(inner);
            Ok(())
        }))
    }
}

/// Slice(Slice(x, s1, e1, a1, p1), s2, e2, a2, p2) on disjoint axes = one Slice with the
/// lists joined. Guards: opset ≥ 10 (slices as inputs), every list a constant, axes given
/// and disjoint after normalising; every reader of the inner result is such a Slice (each
/// is merged in turn, the inner Slice goes with the last: YOLOX's Focus slices one input
/// four ways), and the inner result is not an output.
pub struct SliceChain;

/// (starts, ends, axes, steps) of a Slice, all constant, axes normalised.
fn slice_lists(g: &Graph, n: NodeId, rank: i64) -> Option<[Vec<i64>; 4]> {
    let node = g.node(n);
    let starts = const_ints(g, node.input(1))?;
    let ends = const_ints(g, node.input(2))?;
    let axes: Vec<i64> = const_ints(g, node.input(3))?
        .into_iter()
        .map(|a| if a < 0 { a + rank } else { a })
        .collect();
    let steps = match node.input(4) {
        Some(v) => const_ints(g, Some(v))?,
        None => vec![1; starts.len()],
    };
    let same = [ends.len(), axes.len(), steps.len()]
        .iter()
        .all(|l| *l == starts.len());
    same.then_some([starts, ends, axes, steps])
}

impl Rule for SliceChain {
    fn name(&self) -> &'static str {
        "slice-chain"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Slice") || cx.opset < 10 {
            return None;
        }
        let t = outer.input(0)?;
        let inner = producer_op(g, t, "Slice")?;
        let x = g.node(inner).input(0)?;
        let r = dims(g, x)?.len() as i64;
        let a = slice_lists(g, inner, r)?;
        // Every reader of the inner result must merge, or the inner Slice stays and the
        // merge would add work: each reader a Slice (input 0) on other axes.
        let merges = |m: NodeId| {
            is_op(g.node(m), "Slice")
                && g.node(m).input(0) == Some(t)
                && slice_lists(g, m, r).is_some_and(|b| !a[2].iter().any(|ax| b[2].contains(ax)))
        };
        if g.is_output(t) || !g.value(t).uses().iter().all(|u| merges(u.node)) {
            return None;
        }
        let b = slice_lists(g, n, r)?;
        let joined: Vec<Vec<i64>> = (0..4)
            .map(|k| [a[k].clone(), b[k].clone()].concat())
            .collect();
        let ty = constant(g, g.node(n).input(1))?.dtype();
        Some(Box::new(move |g: &mut Graph| {
            let names = ["slice_starts", "slice_ends", "slice_axes", "slice_steps"];
            g.set_input(n, 0, Some(x));
            for (k, list) in joined.iter().enumerate() {
                let mut t = Tensor::from_i64(vec![list.len() as i64], list);
                if ty == whittle_ir::DataType::Int32 {
                    let raw: Vec<u8> = list
                        .iter()
                        .flat_map(|v| (*v as i32).to_le_bytes())
                        .collect();
                    t = Tensor::from_raw(
                        whittle_ir::DataType::Int32,
                        vec![list.len() as i64],
                        raw.into(),
                    );
                }
                let v = g.add_initializer(names[k], t);
                g.set_input(n, k + 1, Some(v));
            }
            if g.value(t).uses().is_empty() {
                g.remove_node(inner); // the last reader merged
            }
            Ok(())
        }))
    }
}

/// Flatten(Flatten(x, a), b): the inner result is 2-D, so b = 0 gives Flatten(x, 0) and
/// b = 2 gives Flatten(x, rank(x)) (b = 1 is a no-op, removed elsewhere). Guards: x's
/// rank is known; the inner result feeds only the outer Flatten.
pub struct FlattenChain;

impl Rule for FlattenChain {
    fn name(&self) -> &'static str {
        "flatten-chain"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let outer = g.node(n);
        if !is_op(outer, "Flatten") {
            return None;
        }
        let t = outer.input(0)?;
        let inner = producer_op(g, t, "Flatten")?;
        if !single_use(g, t) {
            return None;
        }
        let x = g.node(inner).input(0)?;
        let r = dims(g, x)?.len() as i64;
        let b = outer.attr("axis").and_then(|a| a.i).unwrap_or(1);
        let axis = match b {
            0 | -2 => 0,
            2 => r,
            _ => return None,
        };
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 0, Some(x));
            g.node_mut(n).set_attr(Attribute::int("axis", axis));
            g.remove_node(inner);
            Ok(())
        }))
    }
}
