//! The graph store: operator nodes in a petgraph `StableGraph`, values in an arena.
//!
//! Every tensor name of a graph (input, initializer, node output, outer-scope capture) is
//! one [`Value`]. A value knows its producer and every use; an edge of the node store is
//! one use of a node-produced value (producer → consumer, weight = the value). All edits
//! go through `Graph` methods, which keep names, uses and edges consistent; [`Graph::verify`]
//! checks that they are.

use crate::error::IrError;
use crate::meta::StringPair;
use crate::node::Node;
use crate::tensor::Tensor;
use crate::types::ValueInfo;
use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// A node of a graph. Stable across removals of other nodes.
pub type NodeId = NodeIndex<u32>;

/// A value of a graph (index into its arena).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(crate) u32);

impl ValueId {
    /// The arena index, for tables keyed by value.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a node reads a value: one of its input slots, or a capture of a subgraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Input(u32),
    Capture(u32),
}

/// One use of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Use {
    pub node: NodeId,
    pub slot: Slot,
}

/// A named value of a graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    name: String,
    /// Type, doc string and metadata, as declared or inferred.
    pub info: ValueInfo,
    producer: Option<(NodeId, u32)>,
    uses: Vec<Use>,
    initializer: Option<Tensor>,
    /// Defined by a sparse initializer (kept opaque in [`Graph::sparse_initializers`]).
    sparse: bool,
    /// Read from an enclosing graph (subgraphs only).
    outer: bool,
    /// Dropped from the graph; the arena slot stays so ids remain valid.
    dead: bool,
}

impl Value {
    fn named(name: String) -> Value {
        Value {
            name,
            info: ValueInfo::default(),
            producer: None,
            uses: Vec::new(),
            initializer: None,
            sparse: false,
            outer: false,
            dead: false,
        }
    }

    /// The name as written in the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The producing node and its output slot.
    pub fn producer(&self) -> Option<(NodeId, u32)> {
        self.producer
    }

    /// Every use by a node of this graph (graph outputs are not uses).
    pub fn uses(&self) -> &[Use] {
        &self.uses
    }

    /// The constant tensor, for initializers.
    pub fn initializer(&self) -> Option<&Tensor> {
        self.initializer.as_ref()
    }

    /// True for values read from an enclosing graph.
    pub fn is_outer(&self) -> bool {
        self.outer
    }

    /// True for values defined by a sparse initializer.
    pub fn is_sparse_initializer(&self) -> bool {
        self.sparse
    }
}

/// A value declaration the IR keeps only so the file is reproduced: a second entry for a
/// name already declared (e.g. in both `input` and `value_info`) that says something else.
#[derive(Clone, Debug, PartialEq)]
pub struct ShadowInfo {
    pub list: IoList,
    pub position: usize,
    pub info: ValueInfo,
}

/// The declaration lists of a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoList {
    Input,
    Output,
    ValueInfo,
}

/// `TensorAnnotation`: quantization parameter names attached to a tensor.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TensorAnnotation {
    pub tensor_name: Option<String>,
    pub quant_parameter_tensor_names: Vec<StringPair>,
}

/// A computation graph (the main graph, a subgraph, or a function body).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: Option<String>,
    pub doc_string: Option<String>,
    pub metadata_props: Vec<StringPair>,
    /// Sparse initializers, kept encoded; their names are values of this graph.
    pub sparse_initializers: Vec<crate::meta::Opaque>,
    pub quantization_annotation: Vec<TensorAnnotation>,
    /// Conflicting duplicate declarations, reproduced on export.
    pub shadow_infos: Vec<ShadowInfo>,
    store: StableDiGraph<Node, ValueId, u32>,
    values: Vec<Value>,
    by_name: HashMap<String, ValueId>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    value_info: Vec<ValueId>,
    initializers: Vec<ValueId>,
    next_seq: u64,
    fresh: u64,
    /// Edits noted for a certificate, while recording (`edits.rs`).
    pub(crate) recording: Option<Box<crate::edits::Recording>>,
}

impl PartialEq for Graph {
    /// Structural equality: same nodes in the same order with the same value names,
    /// same declarations. Used by tests; node and value ids are not compared.
    fn eq(&self, other: &Self) -> bool {
        let names = |g: &Graph, ids: &[ValueId]| -> Vec<String> {
            ids.iter().map(|v| g.value(*v).name.clone()).collect()
        };
        let node_sig = |g: &Graph| -> Vec<(Node, Vec<String>, Vec<String>)> {
            g.nodes_in_order()
                .unwrap_or_default()
                .into_iter()
                .map(|n| {
                    let node = g.node(n);
                    let io = |s: &[Option<ValueId>]| {
                        s.iter()
                            .map(|v| v.map_or(String::new(), |v| g.value(v).name.clone()))
                            .collect()
                    };
                    let mut bare = node.clone();
                    bare.inputs.clear();
                    bare.outputs.clear();
                    bare.captures.clear();
                    bare.seq = 0;
                    (bare, io(&node.inputs), io(&node.outputs))
                })
                .collect()
        };
        let inits = |g: &Graph| -> Vec<Option<Tensor>> {
            g.initializers
                .iter()
                .map(|v| g.value(*v).initializer.clone())
                .collect()
        };
        self.name == other.name
            && self.doc_string == other.doc_string
            && self.metadata_props == other.metadata_props
            && names(self, &self.inputs) == names(other, &other.inputs)
            && names(self, &self.outputs) == names(other, &other.outputs)
            && names(self, &self.value_info) == names(other, &other.value_info)
            && inits(self) == inits(other)
            && node_sig(self) == node_sig(other)
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    // ----- lookup -----------------------------------------------------------------

    /// The value with id `v`.
    pub fn value(&self, v: ValueId) -> &Value {
        &self.values[v.index()]
    }

    /// The value with id `v`, mutably (for its `info`).
    pub fn value_mut(&mut self, v: ValueId) -> &mut Value {
        &mut self.values[v.index()]
    }

    /// The value called `name`, if the graph has one.
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.by_name.get(name).copied()
    }

    /// Every live value id, in creation order.
    pub fn value_ids(&self) -> impl Iterator<Item = ValueId> + '_ {
        (0..self.values.len() as u32)
            .map(ValueId)
            .filter(|v| !self.values[v.index()].dead)
    }

    /// The node with id `n`.
    pub fn node(&self, n: NodeId) -> &Node {
        &self.store[n]
    }

    /// The node with id `n`, mutably. Inputs and outputs stay under the graph's control.
    pub fn node_mut(&mut self, n: NodeId) -> &mut Node {
        self.touch_node(n);
        &mut self.store[n]
    }

    /// True while `n` is a node of this graph.
    pub fn contains_node(&self, n: NodeId) -> bool {
        self.store.contains_node(n)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.store.node_count()
    }

    /// Every node id, in no particular order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.store.node_indices()
    }

    /// The underlying petgraph store, for algorithms (reachability, dominators, ...).
    pub fn store(&self) -> &StableDiGraph<Node, ValueId, u32> {
        &self.store
    }

    /// Graph inputs, in order.
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }

    /// Graph outputs, in order.
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }

    /// `value_info` entries, in order.
    pub fn value_info(&self) -> &[ValueId] {
        &self.value_info
    }

    /// Initializers, in order.
    pub fn initializers(&self) -> &[ValueId] {
        &self.initializers
    }

    /// The constant tensor behind `v`, if it is an initializer that is not also a graph
    /// input (an input could be overridden by the caller, so it is not a constant).
    pub fn constant(&self, v: ValueId) -> Option<&Tensor> {
        let val = self.value(v);
        if self.inputs.contains(&v) {
            None
        } else {
            val.initializer.as_ref()
        }
    }

    /// True when `v` is one of the graph outputs.
    pub fn is_output(&self, v: ValueId) -> bool {
        self.outputs.contains(&v)
    }

    // ----- declarations ----------------------------------------------------------------

    /// The value called `name`, created (undefined) if it does not exist yet.
    pub fn intern(&mut self, name: &str) -> ValueId {
        if let Some(v) = self.by_name.get(name) {
            return *v;
        }
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value::named(name.to_string()));
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// A name not used in this graph, built from `hint`.
    pub(crate) fn fresh_name(&mut self, hint: &str) -> String {
        loop {
            self.fresh += 1;
            let name = format!("{hint}_w{}", self.fresh);
            if !self.by_name.contains_key(&name) {
                return name;
            }
        }
    }

    /// In the subgraphs of `node`, reads of the enclosing value `from` become reads of `to`.
    pub(crate) fn rename_in_subgraphs(&mut self, node: NodeId, from: &str, to: &str) {
        self.touch_node(node);
        let attrs = &mut self.store[node].attributes;
        for sub in attrs.iter_mut().flat_map(|a| a.subgraphs_mut()) {
            sub.rename_outer(from, to);
        }
    }

    /// A new value with a name not used in this graph, built from `hint`.
    pub fn fresh_value(&mut self, hint: &str) -> ValueId {
        loop {
            self.fresh += 1;
            let name = format!("{hint}_w{}", self.fresh);
            if !self.by_name.contains_key(&name) {
                return self.intern(&name);
            }
        }
    }

    /// Appends `v` to the graph inputs.
    pub fn push_input(&mut self, v: ValueId) {
        self.touch_interface();
        self.inputs.push(v);
    }

    /// Appends `v` to the graph outputs.
    pub fn push_output(&mut self, v: ValueId) {
        self.touch_interface();
        self.outputs.push(v);
    }

    /// Appends `v` to the `value_info` list.
    pub fn push_value_info(&mut self, v: ValueId) {
        self.value_info.push(v);
    }

    /// Replaces the output list.
    pub fn set_outputs(&mut self, outs: Vec<ValueId>) {
        self.touch_interface();
        self.outputs = outs;
    }

    /// Drops `value_info` entries whose value is gone or fails `keep`.
    pub fn retain_value_info(&mut self, mut keep: impl FnMut(&Graph, ValueId) -> bool) {
        let list = std::mem::take(&mut self.value_info);
        self.value_info = list
            .into_iter()
            .filter(|v| !self.values[v.index()].dead && keep(self, *v))
            .collect();
    }

    /// Marks `name` as read from the enclosing graph.
    pub fn mark_outer(&mut self, v: ValueId) {
        self.values[v.index()].outer = true;
    }

    /// Marks `v` as defined by a sparse initializer.
    pub fn mark_sparse(&mut self, v: ValueId) {
        self.values[v.index()].sparse = true;
    }

    /// Makes `v` an initializer holding `t` (appended to the initializer list if new);
    /// the tensor takes the value's name.
    pub fn set_initializer(&mut self, v: ValueId, mut t: Tensor) {
        self.touch_value(v);
        let val = &mut self.values[v.index()];
        if val.initializer.is_none() {
            self.initializers.push(v);
        }
        t.name = Some(val.name.clone());
        val.initializer = Some(t);
    }

    /// A new initializer value named from `hint` holding `t`.
    pub fn add_initializer(&mut self, hint: &str, mut t: Tensor) -> ValueId {
        let v = self.fresh_value(hint);
        t.name = Some(self.value(v).name.clone());
        self.set_initializer(v, t);
        v
    }

    /// The tensor of initializer `v`, mutably.
    pub fn initializer_mut(&mut self, v: ValueId) -> Option<&mut Tensor> {
        self.touch_value(v);
        self.values[v.index()].initializer.as_mut()
    }

    /// Drops the initializer of `v` (the value stays if still defined otherwise). Its
    /// bytes are released to their owner ([`Tensor::release`]).
    pub fn remove_initializer(&mut self, v: ValueId) -> Option<Tensor> {
        self.touch_value(v);
        self.initializers.retain(|x| *x != v);
        let t = self.values[v.index()].initializer.take();
        self.reap(v);
        if let Some(t) = &t {
            t.release();
        }
        t
    }

    /// Removes `v` from the graph inputs.
    pub fn remove_input(&mut self, v: ValueId) {
        self.touch_interface();
        self.inputs.retain(|x| *x != v);
        self.reap(v);
    }

    // ----- nodes ------------------------------------------------------------------------

    /// Adds `node`, reading `inputs` and defining `outputs`, placed after every existing
    /// node in the tie-break order. Errors when an output is already defined.
    pub fn add_node(
        &mut self,
        node: Node,
        inputs: Vec<Option<ValueId>>,
        outputs: Vec<Option<ValueId>>,
    ) -> Result<NodeId, IrError> {
        let seq = self.next_seq;
        self.insert_node(node, inputs, outputs, seq)
    }

    /// Like [`Graph::add_node`], but ordered at the position of `anchor` (before it in the
    /// tie-break order), so rewrites keep the file's layout readable.
    pub fn add_node_at(
        &mut self,
        anchor: NodeId,
        node: Node,
        inputs: Vec<Option<ValueId>>,
        outputs: Vec<Option<ValueId>>,
    ) -> Result<NodeId, IrError> {
        let seq = self.store[anchor].seq;
        self.insert_node(node, inputs, outputs, seq)
    }

    fn insert_node(
        &mut self,
        mut node: Node,
        inputs: Vec<Option<ValueId>>,
        outputs: Vec<Option<ValueId>>,
        seq: u64,
    ) -> Result<NodeId, IrError> {
        for v in outputs.iter().flatten() {
            self.check_definable(*v, &node)?;
        }
        node.seq = seq;
        self.next_seq = self.next_seq.max(seq + 1);
        node.inputs = Vec::new();
        node.outputs = outputs.clone();
        node.captures = Vec::new();
        let id = self.store.add_node(node);
        self.touch_new_node(id);
        for (i, v) in outputs.iter().enumerate() {
            if let Some(v) = v {
                self.values[v.index()].producer = Some((id, i as u32));
                let users: Vec<Use> = self.values[v.index()].uses.clone();
                for u in users {
                    self.store.add_edge(id, u.node, *v);
                }
            }
        }
        for (i, v) in inputs.into_iter().enumerate() {
            self.store[id].inputs.push(None);
            if let Some(v) = v {
                self.connect(id, Slot::Input(i as u32), v);
            }
        }
        Ok(id)
    }

    fn check_definable(&self, v: ValueId, node: &Node) -> Result<(), IrError> {
        let val = self.value(v);
        let first = if let Some((p, _)) = val.producer {
            Some(format!("node '{}'", self.store[p].label()))
        } else if val.initializer.is_some() {
            Some("an initializer".into())
        } else if self.inputs.contains(&v) {
            Some("a graph input".into())
        } else {
            None
        };
        match first {
            Some(first) => Err(IrError::DuplicateDefinition {
                value: val.name.clone(),
                first,
                second: format!("node '{}'", node.label()),
            }),
            None => Ok(()),
        }
    }

    /// Records that `node` reads `v` at `slot`.
    fn connect(&mut self, node: NodeId, slot: Slot, v: ValueId) {
        self.touch_node(node);
        match slot {
            Slot::Input(i) => self.store[node].inputs[i as usize] = Some(v),
            Slot::Capture(i) => self.store[node].captures[i as usize] = v,
        }
        self.values[v.index()].uses.push(Use { node, slot });
        if let Some((p, _)) = self.values[v.index()].producer {
            self.store.add_edge(p, node, v);
        }
    }

    /// Forgets that `node` reads `v` at `slot`.
    fn disconnect(&mut self, node: NodeId, slot: Slot, v: ValueId) {
        self.touch_node(node);
        let uses = &mut self.values[v.index()].uses;
        if let Some(i) = uses.iter().position(|u| u.node == node && u.slot == slot) {
            uses.swap_remove(i);
        }
        if let Some((p, _)) = self.values[v.index()].producer {
            let edge = self
                .store
                .edges_connecting(p, node)
                .find(|e| *e.weight() == v)
                .map(|e| e.id());
            if let Some(e) = edge {
                self.store.remove_edge(e);
            }
        }
    }

    /// Sets the values that `node`'s subgraphs read from this graph.
    pub fn set_captures(&mut self, node: NodeId, captures: Vec<ValueId>) {
        let old = std::mem::take(&mut self.store[node].captures);
        for (i, v) in old.iter().enumerate() {
            self.disconnect(node, Slot::Capture(i as u32), *v);
        }
        self.store[node].captures = captures.clone();
        for (i, v) in captures.into_iter().enumerate() {
            self.connect(node, Slot::Capture(i as u32), v);
        }
    }

    /// Makes input `slot` of `node` read `v` (None = omitted). Extends the input list with
    /// omitted inputs when `slot` is past its end.
    pub fn set_input(&mut self, node: NodeId, slot: usize, v: Option<ValueId>) {
        self.touch_node(node);
        while self.store[node].inputs.len() <= slot {
            self.store[node].inputs.push(None);
        }
        if let Some(old) = self.store[node].inputs[slot] {
            self.disconnect(node, Slot::Input(slot as u32), old);
            self.reap(old);
        }
        self.store[node].inputs[slot] = None;
        if let Some(v) = v {
            self.connect(node, Slot::Input(slot as u32), v);
        }
    }

    /// Truncates the input list of `node` to `len` slots.
    pub fn truncate_inputs(&mut self, node: NodeId, len: usize) {
        self.touch_node(node);
        while self.store[node].inputs.len() > len {
            let last = self.store[node].inputs.len() - 1;
            self.set_input(node, last, None);
            self.store[node].inputs.pop();
        }
    }

    /// Removes `node`. Its outputs become undefined (and are dropped when nothing refers
    /// to them any more); values it read lose that use.
    pub fn remove_node(&mut self, node: NodeId) -> Option<Node> {
        self.touch_node(node);
        let n = self.store.node_weight(node)?;
        let inputs = n.inputs.clone();
        let captures = n.captures.clone();
        let outputs = n.outputs.clone();
        for (i, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                self.disconnect(node, Slot::Input(i as u32), *v);
                self.reap(*v);
            }
        }
        for (i, v) in captures.iter().enumerate() {
            self.disconnect(node, Slot::Capture(i as u32), *v);
            self.reap(*v);
        }
        for v in outputs.iter().flatten() {
            self.values[v.index()].producer = None;
            self.reap(*v);
        }
        self.store.remove_node(node)
    }

    /// Makes every use of `old` (node inputs, captures, graph outputs) refer to `new`.
    /// A graph output keeps its name only if the caller renames; see
    /// [`Graph::rename_value`].
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        if old == new {
            return;
        }
        let uses = self.values[old.index()].uses.clone();
        // Subgraphs read captured values by name: theirs must follow.
        let (from, to) = (self.value(old).name.clone(), self.value(new).name.clone());
        for u in uses.iter().filter(|u| matches!(u.slot, Slot::Capture(_))) {
            self.rename_in_subgraphs(u.node, &from, &to);
        }
        for u in uses {
            self.disconnect(u.node, u.slot, old);
            self.connect(u.node, u.slot, new);
        }
        if self.outputs.contains(&old) {
            self.touch_interface();
        }
        for o in self.outputs.iter_mut().filter(|o| **o == old) {
            *o = new;
        }
        self.reap(old);
    }

    /// Gives `v` a new name (which must be free).
    pub fn rename_value(&mut self, v: ValueId, name: &str) -> Result<(), IrError> {
        if self.by_name.contains_key(name) {
            return Err(IrError::Invariant(format!(
                "cannot rename to '{name}': the name is taken"
            )));
        }
        if self.recording.is_some() {
            // The producer and readers name the value: their records change with it.
            let val = self.value(v);
            let nodes: Vec<NodeId> = val
                .producer
                .map(|(p, _)| p)
                .into_iter()
                .chain(val.uses.iter().map(|u| u.node))
                .collect();
            for n in nodes {
                self.touch_node(n);
            }
            self.touch_value(v);
            self.touch_interface();
        }
        let old = std::mem::replace(&mut self.values[v.index()].name, name.to_string());
        self.by_name.remove(&old);
        self.by_name.insert(name.to_string(), v);
        if let Some(t) = self.values[v.index()].initializer.as_mut() {
            t.name = Some(name.to_string());
        }
        Ok(())
    }

    /// Drops `v` from the arena when nothing defines, declares or reads it any more.
    fn reap(&mut self, v: ValueId) {
        let val = &self.values[v.index()];
        let orphan = !val.dead
            && val.producer.is_none()
            && val.uses.is_empty()
            && val.initializer.is_none()
            && !val.sparse
            && !self.inputs.contains(&v)
            && !self.outputs.contains(&v);
        if orphan && !val.outer {
            self.values[v.index()].dead = true;
            let name = self.values[v.index()].name.clone();
            self.by_name.remove(&name);
            self.value_info.retain(|x| *x != v);
        }
    }

    // ----- order ------------------------------------------------------------------------

    /// Nodes in topological order; among ready nodes the one earliest in the file (or the
    /// rewrite's anchor) comes first, so an unmodified graph keeps its order exactly.
    pub fn nodes_in_order(&self) -> Result<Vec<NodeId>, IrError> {
        let mut indegree: HashMap<NodeId, usize> = HashMap::new();
        let mut ready = BinaryHeap::new();
        for n in self.store.node_indices() {
            let d = self.store.edges_directed(n, Direction::Incoming).count();
            indegree.insert(n, d);
            if d == 0 {
                ready.push(Reverse((self.store[n].seq, n.index())));
            }
        }
        let mut order = Vec::with_capacity(self.store.node_count());
        while let Some(Reverse((_, i))) = ready.pop() {
            let n = NodeIndex::new(i);
            order.push(n);
            for e in self.store.edges_directed(n, Direction::Outgoing) {
                let t = e.target();
                if let Some(d) = indegree.get_mut(&t) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(Reverse((self.store[t].seq, t.index())));
                    }
                }
            }
        }
        if order.len() != self.store.node_count() {
            let stuck = self
                .store
                .node_indices()
                .find(|n| indegree.get(n).is_some_and(|d| *d > 0))
                .map(|n| (self.store[n].label(), self.store[n].op().to_string()))
                .unwrap_or_default();
            return Err(IrError::Cycle {
                node: stuck.0,
                op: stuck.1,
            });
        }
        Ok(order)
    }

    /// Renumbers the tie-break keys to the current topological order (after a pass).
    pub fn renumber(&mut self) -> Result<(), IrError> {
        let order = self.nodes_in_order()?;
        for (i, n) in order.into_iter().enumerate() {
            self.store[n].seq = i as u64;
        }
        self.next_seq = self.store.node_count() as u64;
        Ok(())
    }

    /// Values read from an enclosing graph, by name, in first-use order.
    pub fn outer_names(&self) -> Vec<String> {
        let mut seen = BTreeMap::new();
        for v in self.value_ids() {
            let val = self.value(v);
            if val.outer && (!val.uses.is_empty() || self.outputs.contains(&v)) {
                seen.insert(v, val.name.clone());
            }
        }
        seen.into_values().collect()
    }
}
