//! Models and model-local functions.

use crate::attr::Attribute;
use crate::graph::Graph;
use crate::meta::{Opaque, OpsetImport, StringPair};

/// A whole ONNX model: metadata, opset imports, the main graph and local functions.
/// Parts the IR does not interpret (training info, device configurations) are carried
/// as [`Opaque`] messages so export reproduces them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Model {
    pub ir_version: Option<i64>,
    pub opset_imports: Vec<OpsetImport>,
    pub producer_name: Option<String>,
    pub producer_version: Option<String>,
    pub domain: Option<String>,
    pub model_version: Option<i64>,
    pub doc_string: Option<String>,
    pub graph: Graph,
    /// False when the file had no `graph` field (kept so export can reproduce that).
    pub has_graph: bool,
    pub metadata_props: Vec<StringPair>,
    pub training_info: Vec<Opaque>,
    pub functions: Vec<Function>,
    pub configuration: Vec<Opaque>,
    /// How far through a whittle run the model has come (not written to the file): the
    /// pipeline refuses a pass whose phase the model has gone past.
    pub phase: crate::Phase,
}

impl Model {
    /// The version imported for `domain` ("" = the default ONNX domain).
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let want = if domain == "ai.onnx" { "" } else { domain };
        self.opset_imports
            .iter()
            .find(|o| o.domain() == want)
            .and_then(|o| o.version)
    }
}

/// A model-local function. Its body is an IR graph whose inputs and outputs are the
/// function's formal parameters (untyped) and which has no initializers.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Function {
    pub name: Option<String>,
    pub domain: Option<String>,
    pub overload: Option<String>,
    /// Names of attributes without defaults.
    pub attribute: Vec<String>,
    /// Attributes with default values.
    pub attribute_proto: Vec<Attribute>,
    pub body: Graph,
    pub doc_string: Option<String>,
    pub opset_import: Vec<OpsetImport>,
    pub metadata_props: Vec<StringPair>,
}
