//! What a certificate says about a node, a tensor and a rewrite, in a form both sides
//! compute from a graph alone: names, op, attributes as canonical text, tensors by
//! SHA-256 of their little-endian bytes (never their contents).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use whittle_ir::edits::{Edit, NodeState};
use whittle_ir::{Attribute, Graph, NodeId, Tensor};

/// A node: `domain|op`, its name, the names it reads and defines ("" for an omitted
/// input), and its attributes as canonical text, sorted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeRec {
    pub op: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<String>,
}

impl NodeRec {
    /// The record of a node in `g`.
    pub fn of(g: &Graph, n: NodeId) -> NodeRec {
        NodeRec::of_state(&g.node_state(n))
    }

    /// The record of a node as an edit saw it.
    pub fn of_state(s: &NodeState) -> NodeRec {
        let node = &s.node;
        let mut attrs: Vec<String> = node.attributes.iter().map(attribute_text).collect();
        attrs.sort();
        NodeRec {
            op: format!("{}|{}", node.domain(), node.op()),
            name: node.name.clone().unwrap_or_default(),
            inputs: s.inputs.clone(),
            outputs: s.outputs.clone(),
            attrs,
        }
    }

    /// What identifies the node in its graph: its outputs (every name is defined once),
    /// or for a node without outputs its op and name.
    pub fn key(&self) -> String {
        if self.outputs.iter().any(|o| !o.is_empty()) {
            self.outputs.join(",")
        } else {
            format!("{} {}", self.op, self.name)
        }
    }

    /// The attribute called `name`, as its canonical text without the name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
    }
}

/// A tensor: element type code, dims and the SHA-256 of its little-endian bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorRec {
    pub name: String,
    pub dtype: i32,
    pub dims: Vec<i64>,
    pub sha256: String,
}

impl TensorRec {
    /// The record of `t` under `name`.
    pub fn of(name: &str, t: &Tensor) -> TensorRec {
        TensorRec {
            name: name.to_string(),
            dtype: t.dtype().code(),
            dims: t.dims.clone(),
            sha256: tensor_digest(t),
        }
    }

    /// The content without the name, as a Constant's `value` attribute shows it.
    pub fn content(&self) -> String {
        format!("{}{:?}:{}", self.dtype, self.dims, self.sha256)
    }
}

/// Hex SHA-256 of a tensor's little-endian bytes ("unreadable" when they cannot be read).
/// Pages of a memory-mapped tensor are handed back once hashed, so hashing a model's
/// weights does not keep them resident.
pub fn tensor_digest(t: &Tensor) -> String {
    let digest = match t.le_bytes() {
        Ok(b) => hex(&Sha256::digest(&b)),
        Err(_) => "unreadable".into(),
    };
    t.release();
    digest
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `name=value`: numbers exactly (floats by their bits), strings in hex, tensors by
/// content digest, subgraphs as `graph` (a subgraph's nodes are records of their own
/// scope).
pub fn attribute_text(a: &Attribute) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(i) = a.i {
        parts.push(format!("i:{i}"));
    }
    if let Some(f) = a.f {
        parts.push(format!("f:{:08x}", f.to_bits()));
    }
    if let Some(s) = &a.s {
        parts.push(format!("s:{}", hex(s)));
    }
    if let Some(t) = &a.t {
        parts.push(format!("t:{}", TensorRec::of("", t).content()));
    }
    if a.g.is_some() || !a.graphs.is_empty() {
        parts.push("graph".into());
    }
    if !a.ints.is_empty() {
        let v: Vec<String> = a.ints.iter().map(|i| i.to_string()).collect();
        parts.push(format!("ints:{}", v.join(",")));
    }
    if !a.floats.is_empty() {
        let v: Vec<String> = a
            .floats
            .iter()
            .map(|f| format!("{:08x}", f.to_bits()))
            .collect();
        parts.push(format!("floats:{}", v.join(",")));
    }
    if !a.strings.is_empty() {
        let v: Vec<String> = a.strings.iter().map(|s| hex(s)).collect();
        parts.push(format!("strings:{}", v.join(",")));
    }
    for t in &a.tensors {
        parts.push(format!("t:{}", TensorRec::of("", t).content()));
    }
    if a.sparse_tensor.is_some() || !a.sparse_tensors.is_empty() || a.tp.is_some() {
        parts.push("opaque".into());
    }
    if let Some(r) = &a.ref_attr_name {
        parts.push(format!("ref:{r}"));
    }
    format!("{}={}", a.name(), parts.join(";"))
}

/// What one rewrite changed in one graph, as records.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Region {
    /// The subgraph it changed: steps `holder-output:attribute:index` from the main graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    pub removed: Vec<NodeRec>,
    pub added: Vec<NodeRec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inits_removed: Vec<TensorRec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inits_added: Vec<TensorRec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<(Vec<String>, Vec<String>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<(Vec<String>, Vec<String>)>,
    /// Made by a lossy step: replayed, but outside proof.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lossy: bool,
}

impl Region {
    /// The records of an edit made in the graph at `scope`.
    pub fn of_edit(edit: &Edit, scope: Vec<String>) -> Region {
        let mut r = Region {
            scope,
            removed: edit.removed.iter().map(NodeRec::of_state).collect(),
            added: edit.added.iter().map(NodeRec::of_state).collect(),
            outputs: edit.outputs.clone(),
            inputs: edit.inputs.clone(),
            ..Region::default()
        };
        for (before, after) in &edit.initializers {
            r.inits_removed
                .extend(before.as_ref().map(|(n, t)| TensorRec::of(n, t)));
            r.inits_added
                .extend(after.as_ref().map(|(n, t)| TensorRec::of(n, t)));
        }
        r
    }
}

/// One entry of the rewrite log: which pass and rule, where, and (for rewrites the
/// lossless pipeline made) the region it changed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Rewrite {
    pub pass: String,
    pub rule: String,
    pub site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
}

/// A file the certificate speaks of.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

/// A lossy step: outside proof, with what it measured.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LossyStep {
    pub site: String,
    pub measured: String,
}

/// The certificate of one run of `whittle optimize`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Certificate {
    /// Format version of this file.
    pub format: u32,
    pub whittle: String,
    pub original: FileDigest,
    pub optimized: FileDigest,
    pub rewrites: Vec<Rewrite>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lossy: Vec<LossyStep>,
}

/// The certificate format this checker reads.
pub const FORMAT: u32 = 1;

/// Hex SHA-256 of a file's bytes.
pub fn file_digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
