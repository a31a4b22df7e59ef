//! Edit recording: what one rewrite changed, node by node, for certificates.
//!
//! While a graph records ([`Graph::start_recording`]), every edit made through its
//! methods notes what it touches the first time it touches it: a node's state before
//! (op, attributes, the names it reads and defines), an initializer's tensor before, the
//! interface before. [`Graph::finish_recording`] compares that with the state after and
//! returns the [`Edit`]: the nodes as they were and as they are, for those that changed.

use crate::graph::{Graph, NodeId, ValueId};
use crate::node::Node;
use crate::tensor::Tensor;

/// A node as names see it: the node and the names of the values it reads and defines
/// ("" for an omitted slot).
#[derive(Clone, Debug)]
pub struct NodeState {
    pub node: Node,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl NodeState {
    /// Equal computations: op, domain, name, attributes and the names on both sides.
    fn same(&self, other: &NodeState) -> bool {
        self.node.op_type == other.node.op_type
            && self.node.domain == other.node.domain
            && self.node.overload == other.node.overload
            && self.node.name == other.node.name
            && self.node.attributes == other.node.attributes
            && self.inputs == other.inputs
            && self.outputs == other.outputs
    }
}

/// An initializer before or after: its name and tensor.
pub type NamedTensor = (String, Tensor);

/// What one rewrite changed in one graph.
#[derive(Clone, Debug, Default)]
pub struct Edit {
    /// Nodes as they were, for those removed or changed.
    pub removed: Vec<NodeState>,
    /// Nodes as they are, for those added or changed.
    pub added: Vec<NodeState>,
    /// Initializers that changed: before (None: none) and after (None: gone).
    pub initializers: Vec<(Option<NamedTensor>, Option<NamedTensor>)>,
    /// Graph outputs by name, before and after, when they changed.
    pub outputs: Option<(Vec<String>, Vec<String>)>,
    /// Graph inputs by name, before and after, when they changed.
    pub inputs: Option<(Vec<String>, Vec<String>)>,
}

impl Edit {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added.is_empty()
            && self.initializers.is_empty()
            && self.outputs.is_none()
            && self.inputs.is_none()
    }
}

/// The first-touch states collected while recording.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recording {
    /// Nodes in first-touch order, with their state before (None: made while recording).
    nodes: Vec<(NodeId, Option<NodeState>)>,
    /// Values whose initializer or name may have changed: name and initializer before.
    values: Vec<(ValueId, String, Option<Tensor>)>,
    /// Output and input names before, once either list was touched.
    interface: Option<(Vec<String>, Vec<String>)>,
}

impl Graph {
    /// Starts recording edits (dropping any recording in progress).
    pub fn start_recording(&mut self) {
        self.recording = Some(Box::default());
    }

    /// Stops recording and returns what changed since [`Graph::start_recording`]
    /// (None when the graph was not recording).
    pub fn finish_recording(&mut self) -> Option<Edit> {
        let rec = self.recording.take()?;
        let mut edit = Edit::default();
        for (n, before) in rec.nodes {
            let after = self.contains_node(n).then(|| self.node_state(n));
            match (before, after) {
                (Some(b), Some(a)) if b.same(&a) => {}
                (b, a) => {
                    edit.removed.extend(b);
                    edit.added.extend(a);
                }
            }
        }
        for (v, name, before) in rec.values {
            let val = self.value(v);
            let after = val
                .initializer()
                .map(|t| (val.name().to_string(), t.clone()));
            let before = before.map(|t| (name, t));
            let same = match (&before, &after) {
                (Some((n1, t1)), Some((n2, t2))) => n1 == n2 && t1 == t2,
                (None, None) => true,
                _ => false,
            };
            if !same {
                edit.initializers.push((before, after));
            }
        }
        if let Some((outs, ins)) = rec.interface {
            let (now_outs, now_ins) = self.interface_names();
            if outs != now_outs {
                edit.outputs = Some((outs, now_outs));
            }
            if ins != now_ins {
                edit.inputs = Some((ins, now_ins));
            }
        }
        Some(edit)
    }

    /// The node `n` as names see it.
    pub fn node_state(&self, n: NodeId) -> NodeState {
        let name = |v: &Option<ValueId>| v.map_or(String::new(), |v| self.value(v).name().into());
        let node = self.node(n);
        NodeState {
            node: node.clone(),
            inputs: node.inputs().iter().map(name).collect(),
            outputs: node.outputs().iter().map(name).collect(),
        }
    }

    fn interface_names(&self) -> (Vec<String>, Vec<String>) {
        let names = |ids: &[ValueId]| ids.iter().map(|v| self.value(*v).name().into()).collect();
        (names(self.outputs()), names(self.inputs()))
    }

    /// Notes node `n`'s state before its first change while recording.
    pub(crate) fn touch_node(&mut self, n: NodeId) {
        let Some(rec) = self.recording.as_ref() else {
            return;
        };
        if rec.nodes.iter().any(|(m, _)| *m == n) {
            return;
        }
        let state = self.contains_node(n).then(|| self.node_state(n));
        if let Some(rec) = self.recording.as_mut() {
            rec.nodes.push((n, state));
        }
    }

    /// Notes that node `n` was made while recording.
    pub(crate) fn touch_new_node(&mut self, n: NodeId) {
        if let Some(rec) = self.recording.as_mut()
            && !rec.nodes.iter().any(|(m, _)| *m == n)
        {
            rec.nodes.push((n, None));
        }
    }

    /// Notes value `v`'s name and initializer before its first change while recording.
    pub(crate) fn touch_value(&mut self, v: ValueId) {
        let Some(rec) = self.recording.as_ref() else {
            return;
        };
        if rec.values.iter().any(|(w, _, _)| *w == v) {
            return;
        }
        let val = self.value(v);
        let entry = (v, val.name().to_string(), val.initializer().cloned());
        if let Some(rec) = self.recording.as_mut() {
            rec.values.push(entry);
        }
    }

    /// Notes the interface before its first change while recording.
    pub(crate) fn touch_interface(&mut self) {
        if self
            .recording
            .as_ref()
            .is_some_and(|r| r.interface.is_none())
        {
            let names = self.interface_names();
            if let Some(rec) = self.recording.as_mut() {
                rec.interface = Some(names);
            }
        }
    }
}
