//! Small algebraic fusions: Log(Softmax) → LogSoftmax, Where(Not(c), x, y) → Where(c, y, x).

use crate::guard::{is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::{Graph, Node, NodeId};

/// y = Log(Softmax(x)) becomes LogSoftmax(x) with the same axis (opset ≥ 13, where both
/// take a single axis). Guard: the Softmax result feeds only the Log.
pub struct LogSoftmax;

impl Rule for LogSoftmax {
    fn name(&self) -> &'static str {
        "log-softmax"
    }

    fn find(&self, g: &Graph, n: NodeId, cx: &RuleCx) -> Option<Patch> {
        let log = g.node(n);
        if !is_op(log, "Log") || cx.opset < 13 {
            return None;
        }
        let (s, y) = (log.input(0)?, log.output(0)?);
        let (sm, _) = g.value(s).producer()?;
        if !is_op(g.node(sm), "Softmax") || !single_use(g, s) {
            return None;
        }
        let x = g.node(sm).input(0)?;
        let axis = g.node(sm).attr("axis").cloned();
        let name = g.node(sm).name.clone();
        Some(Box::new(move |g: &mut Graph| {
            g.remove_node(n);
            let mut ls = Node::new("LogSoftmax");
            ls.name = name;
            if let Some(a) = axis {
                ls = ls.with_attr(a);
            }
            g.add_node_at(sm, ls, vec![Some(x)], vec![Some(y)])?;
            g.remove_node(sm);
            Ok(())
        }))
    }
}

/// Where(Not(c), x, y) = Where(c, y, x). Guard: the Not result feeds only this Where.
pub struct WhereNot;

impl Rule for WhereNot {
    fn name(&self) -> &'static str {
        "where-not"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let w = g.node(n);
        if !is_op(w, "Where") {
            return None;
        }
        let (nc, x, y) = (w.input(0)?, w.input(1)?, w.input(2)?);
        let (not_id, _) = g.value(nc).producer()?;
        if !is_op(g.node(not_id), "Not") || !single_use(g, nc) {
            return None;
        }
        let c = g.node(not_id).input(0)?;
        Some(Box::new(move |g: &mut Graph| {
            g.set_input(n, 0, Some(c));
            g.set_input(n, 1, Some(y));
            g.set_input(n, 2, Some(x));
            g.remove_node(not_id);
            Ok(())
        }))
    }
}
