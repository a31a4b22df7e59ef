//! Operator nodes.

use crate::attr::Attribute;
use crate::graph::ValueId;
use crate::meta::{Opaque, StringPair};

/// One operator application. Op identity is dynamic (domain + op_type), so unknown ops and
/// custom domains pass through untouched. Inputs and outputs are set only through
/// [`crate::Graph`], which keeps use lists and edges in step.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Node {
    pub name: Option<String>,
    pub op_type: Option<String>,
    pub domain: Option<String>,
    pub overload: Option<String>,
    pub doc_string: Option<String>,
    pub attributes: crate::attrs::Attributes,
    pub metadata_props: Vec<StringPair>,
    pub device_configurations: Vec<Opaque>,
    pub(crate) inputs: Vec<Option<ValueId>>,
    pub(crate) outputs: Vec<Option<ValueId>>,
    /// Values of the enclosing graph that this node's subgraphs read by name.
    pub(crate) captures: Vec<ValueId>,
    /// Position key: export orders nodes topologically, ties broken by this key, so an
    /// unmodified graph keeps its file order and new nodes sit where they were made.
    pub(crate) seq: u64,
}

impl Node {
    /// A node of the default domain with no name, inputs or outputs yet.
    pub fn new(op_type: &str) -> Node {
        Node {
            op_type: Some(op_type.to_string()),
            ..Node::default()
        }
    }

    /// Builder-style: the given attribute added.
    pub fn with_attr(mut self, a: Attribute) -> Node {
        self.attributes.push(a);
        self
    }

    /// Builder-style: the given name set.
    pub fn with_name(mut self, name: impl Into<String>) -> Node {
        self.name = Some(name.into());
        self
    }

    /// The op type, or "" when absent.
    pub fn op(&self) -> &str {
        self.op_type.as_deref().unwrap_or("")
    }

    /// The domain with `ai.onnx` normalised to "".
    pub fn domain(&self) -> &str {
        match self.domain.as_deref() {
            None | Some("ai.onnx") => "",
            Some(d) => d,
        }
    }

    /// The node name, or "" when absent.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// Input slots; `None` is an omitted optional input ("").
    pub fn inputs(&self) -> &[Option<ValueId>] {
        &self.inputs
    }

    /// Output slots; `None` is an omitted optional output ("").
    pub fn outputs(&self) -> &[Option<ValueId>] {
        &self.outputs
    }

    /// The enclosing-graph values that this node's subgraphs read.
    pub fn captures(&self) -> &[ValueId] {
        &self.captures
    }

    /// Input `i`, when present.
    pub fn input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }

    /// Output `i`, when present.
    pub fn output(&self, i: usize) -> Option<ValueId> {
        self.outputs.get(i).copied().flatten()
    }

    /// The attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name() == name)
    }

    /// Sets (replacing) the attribute of the same name.
    pub fn set_attr(&mut self, a: Attribute) {
        match self.attributes.iter_mut().find(|x| x.name() == a.name()) {
            Some(slot) => *slot = a,
            None => self.attributes.push(a),
        }
    }

    /// Removes the attribute called `name`, returning it.
    pub fn remove_attr(&mut self, name: &str) -> Option<Attribute> {
        let i = self.attributes.iter().position(|a| a.name() == name)?;
        Some(self.attributes.remove(i))
    }

    /// True when some attribute holds a subgraph.
    pub fn has_subgraphs(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| a.subgraphs().next().is_some())
    }

    /// A short label for messages: the name when set, else the op type.
    pub fn label(&self) -> String {
        match self.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("<unnamed {}>", self.op()),
        }
    }
}
