//! The erf form of GELU, x·½·(1 + erf(x/√2)), becomes one `Gelu` (opset ≥ 20).

use crate::guard::{constant, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{DataType, Graph, Node, NodeId, ValueId};

/// Anchored at the Erf: d = x/√2 (Div by √2 or Mul by 1/√2), e = Erf(d), a = e + 1, then
/// either y = (x·a)·½ or y = (x·½)·a (operands in any order). Guards: opset ≥ 20 (where
/// Gelu exists); every intermediate has exactly the one reader in the pattern and is not
/// an output; the constants are f32 scalars within 1e-5 of √2 (or 1/√2), 1 and ½.
pub struct GeluErf;

fn scalar(g: &Graph, v: ValueId) -> Option<f64> {
    let t = constant(g, Some(v))?;
    if t.dtype() != DataType::Float {
        return None;
    }
    let x = t.to_f32_vec().ok()?;
    (x.len() == 1).then(|| f64::from(x[0]))
}

fn near(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-5)
}

/// The operand of a binary `op` node other than the constant `c`-valued one.
fn other_than_const(g: &Graph, n: NodeId, op: &str, c: f64) -> Option<ValueId> {
    let node = g.node(n);
    if !is_op(node, op) {
        return None;
    }
    let (p, q) = (node.input(0)?, node.input(1)?);
    if near(scalar(g, q), c) {
        Some(p)
    } else if op != "Div" && near(scalar(g, p), c) {
        Some(q)
    } else {
        None
    }
}

/// The single reader of `v`.
fn reader(g: &Graph, v: ValueId) -> Option<NodeId> {
    single_use(g, v).then(|| g.value(v).uses()[0].node)
}

impl Rule for GeluErf {
    fn name(&self) -> &'static str {
        "gelu"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        if cx.opset < 20 || !is_op(g.node(n), "Erf") {
            return None;
        }
        let d = g.node(n).input(0)?;
        let e = g.node(n).output(0)?;
        let (scale_id, _) = g.value(d).producer()?;
        if !single_use(g, d) {
            return None;
        }
        let x = other_than_const(g, scale_id, "Div", std::f64::consts::SQRT_2)
            .or_else(|| other_than_const(g, scale_id, "Mul", std::f64::consts::FRAC_1_SQRT_2))?;
        let add = reader(g, e)?;
        let a = g.node(add).output(0)?;
        if other_than_const(g, add, "Add", 1.0)? != e {
            return None;
        }
        let mul = reader(g, a)?;
        let mnode = g.node(mul);
        if !is_op(mnode, "Mul") {
            return None;
        }
        let partner = if mnode.input(0)? == a {
            mnode.input(1)?
        } else {
            mnode.input(0)?
        };
        let m_out = mnode.output(0)?;
        let mut dead = vec![scale_id, n, add, mul];
        let y = if partner == x {
            // (x·a)·½
            let half = reader(g, m_out)?;
            if other_than_const(g, half, "Mul", 0.5)? != m_out {
                return None;
            }
            dead.push(half);
            g.node(half).output(0)?
        } else {
            // (x·½)·a
            let (h, _) = g.value(partner).producer()?;
            if !single_use(g, partner) || other_than_const(g, h, "Mul", 0.5)? != x {
                return None;
            }
            dead.push(h);
            m_out
        };
        if dead.iter().any(|k| {
            g.node(*k)
                .outputs()
                .iter()
                .flatten()
                .any(|v| *v != y && g.is_output(*v))
        }) {
            return None;
        }
        let name = g.node(n).name.clone();
        Some(Box::new(move |g: &mut Graph| {
            // The first node of the pattern anchors the new one, so it stays in place.
            let anchor = dead[0];
            for k in &dead[1..] {
                g.remove_node(*k);
            }
            let mut gelu = Node::new("Gelu");
            gelu.name = name;
            g.add_node_at(anchor, gelu, vec![Some(x)], vec![Some(y)])?;
            g.remove_node(anchor);
            Ok(())
        }))
    }
}
