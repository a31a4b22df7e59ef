//! Checks a freshly imported model against the rules everything downstream relies on,
//! so a broken or hostile file fails at the door with a message naming the node or
//! value, instead of somewhere deep in a pass.
//!
//! - every node's domain is imported (or is a model-local function's domain);
//! - nodes are in topological order (no value is read before the node that makes it,
//!   which also rules out cycles);
//! - declared dims are not negative and their product fits in 63 bits;
//! - window ops (Conv, pools) have strides, dilations, kernel sizes and groups ≥ 1 and
//!   pads in [0, 2³¹).

use crate::error::OnnxError;
use std::collections::HashSet;
use whittle_ir::{Dim, Graph, Model, NodeId, TypeKind};

/// Largest pad a window op may ask for (anything larger cannot be a real model).
const MAX_PAD: i64 = (1 << 31) - 1;

/// Ops whose window attributes are checked (default domain).
const WINDOW_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "ConvInteger",
    "QLinearConv",
    "DeformConv",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "MaxUnpool",
    "MaxRoiPool",
];

/// All checks over the model's graphs (subgraphs included) and functions.
pub fn validate(m: &Model) -> Result<(), OnnxError> {
    let mut domains: HashSet<&str> = m.opset_imports.iter().map(|o| o.domain()).collect();
    domains.extend(m.functions.iter().filter_map(|f| f.domain.as_deref()));
    if m.has_graph {
        let label = format!("graph '{}'", m.graph.name.as_deref().unwrap_or(""));
        graph(&m.graph, &domains, &label)?;
    }
    for f in &m.functions {
        let mut fdomains = domains.clone();
        fdomains.extend(f.opset_import.iter().map(|o| o.domain()));
        let label = format!("function '{}'", f.name.as_deref().unwrap_or(""));
        graph(&f.body, &fdomains, &label)?;
    }
    Ok(())
}

fn invalid(msg: String) -> OnnxError {
    OnnxError::Invalid(msg)
}

fn graph(g: &Graph, domains: &HashSet<&str>, label: &str) -> Result<(), OnnxError> {
    dims(g, label)?;
    let mut done: HashSet<NodeId> = HashSet::new();
    for n in g.node_ids() {
        let node = g.node(n);
        let domain = match node.domain() {
            "ai.onnx" => "",
            d => d,
        };
        if !domains.contains(domain) {
            let shown = if domain.is_empty() {
                "ai.onnx (\"\")"
            } else {
                domain
            };
            return Err(invalid(format!(
                "{label}: node '{}' ({}) uses domain {shown}, which the model does not import \
                 (opset_import lists: {})",
                node.label(),
                node.op(),
                list(domains)
            )));
        }
        for v in node.inputs().iter().flatten() {
            if let Some((p, _)) = g.value(*v).producer()
                && !done.contains(&p)
            {
                let what = if p == n {
                    "its own output".to_string()
                } else {
                    format!("a value of node '{}', which comes later", g.node(p).label())
                };
                return Err(invalid(format!(
                    "{label}: node '{}' ({}) reads '{}', {what}: nodes must be in \
                     topological order (or the graph has a cycle)",
                    node.label(),
                    node.op(),
                    g.value(*v).name()
                )));
            }
        }
        if domain.is_empty() && WINDOW_OPS.contains(&node.op()) {
            window_attributes(g, n, label)?;
        }
        for a in &node.attributes {
            for sub in a.subgraphs() {
                let sublabel = format!("{label}: node '{}' subgraph", node.label());
                graph(sub, domains, &sublabel)?;
            }
        }
        done.insert(n);
    }
    Ok(())
}

fn list(domains: &HashSet<&str>) -> String {
    let mut d: Vec<&str> = domains
        .iter()
        .map(|d| if d.is_empty() { "ai.onnx" } else { d })
        .collect();
    d.sort();
    if d.is_empty() {
        "nothing".into()
    } else {
        d.join(", ")
    }
}

/// Declared dims of inputs, outputs and value_info: product in range. A negative
/// declared size (written by some converters for a dynamic dim) was read as unknown: it
/// is reported once, since no data size depends on it.
fn dims(g: &Graph, label: &str) -> Result<(), OnnxError> {
    let declared = g.inputs().iter().chain(g.outputs()).chain(g.value_info());
    let mut negative = None;
    for v in declared {
        let val = g.value(*v);
        let Some(ty) = &val.info.ty else { continue };
        let (TypeKind::Tensor { shape: Some(s), .. }
        | TypeKind::SparseTensor { shape: Some(s), .. }) = &ty.kind
        else {
            continue;
        };
        if let Some(Dim::Known(k)) = s.iter().find_map(|d| d.written.clone()) {
            negative.get_or_insert((val.name().to_string(), k));
        }
        let mut product: i64 = 1;
        for d in s {
            let Dim::Known(k) = d.dim else { continue };
            if k < 0 {
                return Err(invalid(format!(
                    "{label}: value '{}' declares dim {k}; dims cannot be negative",
                    val.name()
                )));
            }
            product = product.checked_mul(k).ok_or_else(|| {
                invalid(format!(
                    "{label}: value '{}' declares dims whose product overflows 64 bits",
                    val.name()
                ))
            })?;
        }
    }
    if let Some((name, k)) = negative {
        tracing::warn!(
            "{label}: value '{name}' (and maybe others) declares dim {k}; read as unknown and \
             written back as it was"
        );
    }
    Ok(())
}

/// strides, dilations, kernel_shape ≥ 1; group ≥ 1; pads and output_padding in range.
fn window_attributes(g: &Graph, n: NodeId, label: &str) -> Result<(), OnnxError> {
    let node = g.node(n);
    let bad = |attr: &str, v: i64, want: &str| {
        invalid(format!(
            "{label}: node '{}' ({}): {attr} = {v}, expected {want}",
            node.label(),
            node.op()
        ))
    };
    for name in ["strides", "dilations", "kernel_shape"] {
        if let Some(a) = node.attr(name)
            && let Some(v) = a.ints.iter().find(|v| **v < 1)
        {
            return Err(bad(name, *v, "≥ 1"));
        }
    }
    for name in ["pads", "output_padding"] {
        if let Some(a) = node.attr(name)
            && let Some(v) = a.ints.iter().find(|v| !(0..=MAX_PAD).contains(*v))
        {
            return Err(bad(name, *v, "in [0, 2^31)"));
        }
    }
    if let Some(v) = node.attr("group").and_then(|a| a.i).filter(|v| *v < 1) {
        return Err(bad("group", v, "≥ 1"));
    }
    Ok(())
}
