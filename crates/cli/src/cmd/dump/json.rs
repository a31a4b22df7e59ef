//! `whittle dump --format json`: the graph, the summary (`--summary`) or the per-node
//! costs (`--cost`). Keys keep a fixed order; `schema_version` changes when they do.

use super::Loaded;
use serde::Serialize;
use serde_json::{Value as J, json};
use std::collections::BTreeMap;
use whittle_ir::attr::kind;
use whittle_ir::cost::graph_costs;
use whittle_ir::infer::Poly;
use whittle_ir::stats::{ModelStats, op_key};
use whittle_ir::text::type_text;
use whittle_ir::{Attribute, Dim, Graph, Model, Type, ValueId};

/// Bumped whenever a key is renamed or removed.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct ValueJson {
    name: String,
    elem: Option<String>,
    /// Integers for known sizes, strings for symbols, null for unknown; null = rank unknown.
    dims: Option<Vec<J>>,
}

fn dim_json(d: &Dim) -> J {
    match d {
        Dim::Known(n) => json!(n),
        Dim::Param(p) => json!(p),
        Dim::Unknown => J::Null,
    }
}

fn value_json(g: &Graph, v: ValueId) -> ValueJson {
    let ty = g.value(v).info.ty.as_ref();
    ValueJson {
        name: g.value(v).name().to_string(),
        elem: ty.and_then(Type::elem).map(|e| e.short_name()),
        dims: ty
            .and_then(Type::dims)
            .map(|d| d.iter().map(dim_json).collect()),
    }
}

fn poly_json(p: Option<&Poly>) -> J {
    match p {
        None => J::Null,
        Some(p) => p
            .as_const()
            .map_or_else(|| json!(p.to_string()), |c| json!(c)),
    }
}

fn opsets(m: &Model) -> BTreeMap<String, i64> {
    super::summary::opset_pairs(m).into_iter().collect()
}

fn io(g: &Graph, ids: &[ValueId]) -> Vec<ValueJson> {
    ids.iter()
        .filter(|v| g.value(**v).initializer().is_none())
        .map(|v| value_json(g, *v))
        .collect()
}

#[derive(Serialize)]
struct SummaryJson {
    schema_version: u32,
    ir_version: Option<i64>,
    opsets: BTreeMap<String, i64>,
    producer: String,
    file_size: u64,
    inputs: Vec<ValueJson>,
    outputs: Vec<ValueJson>,
    nodes: usize,
    subgraph_nodes: usize,
    op_counts: BTreeMap<String, usize>,
    params: u64,
    initializer_bytes: u64,
    initializer_bytes_by_dtype: BTreeMap<String, u64>,
    /// Integers when every dim is known, formula strings with symbolic dims, null when
    /// some node's cost is unknown.
    macs: J,
    flops: J,
    macs_by_op: BTreeMap<String, J>,
    flops_by_op: BTreeMap<String, J>,
    unknown_cost_nodes: Vec<String>,
    dynamic_dims: Vec<String>,
    largest_tensors: Vec<J>,
}

fn summary_json(l: &Loaded) -> SummaryJson {
    let m = &l.model;
    let s = ModelStats::of(m);
    let g = &m.graph;
    let by_op = |b: &BTreeMap<String, Poly>| {
        b.iter()
            .map(|(k, v)| (k.clone(), poly_json(Some(v))))
            .collect()
    };
    SummaryJson {
        schema_version: SCHEMA_VERSION,
        ir_version: m.ir_version,
        opsets: opsets(m),
        producer: format!(
            "{} {}",
            m.producer_name.as_deref().unwrap_or(""),
            m.producer_version.as_deref().unwrap_or("")
        )
        .trim()
        .to_string(),
        file_size: l.file_size,
        inputs: io(g, g.inputs()),
        outputs: io(g, g.outputs()),
        nodes: s.nodes,
        subgraph_nodes: s.subgraph_nodes,
        op_counts: s.op_counts.clone(),
        params: s.params,
        initializer_bytes: s.initializer_total(),
        initializer_bytes_by_dtype: s.initializer_bytes.clone(),
        macs: poly_json(s.macs.as_ref()),
        flops: poly_json(s.flops.as_ref()),
        macs_by_op: by_op(&s.macs_by_op),
        flops_by_op: by_op(&s.flops_by_op),
        unknown_cost_nodes: s.unknown_cost_nodes.clone(),
        dynamic_dims: s.dynamic_dims.clone(),
        largest_tensors: s
            .largest
            .iter()
            .map(|(n, t, b)| json!({"name": n, "type": t, "bytes": b}))
            .collect(),
    }
}

/// The `--summary` object.
pub fn summary(l: &Loaded) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&summary_json(l))?)
}

/// Both summaries of `--compare`.
pub fn compare(a: &Loaded, b: &Loaded) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&json!({
        "schema_version": SCHEMA_VERSION,
        "a": summary_json(a),
        "b": summary_json(b),
    }))?)
}

/// The `--cost` rows.
pub fn costs(l: &Loaded) -> anyhow::Result<String> {
    let g = &l.model.graph;
    let rows: Vec<J> = graph_costs(g)
        .iter()
        .map(|c| {
            let n = g.node(c.node);
            json!({
                "name": n.label(),
                "op": op_key(n),
                "macs": poly_json(c.macs.as_ref()),
                "flops": poly_json(c.flops.as_ref()),
                "params": c.params,
                "output_bytes": poly_json(c.out_bytes.as_ref()),
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(
        &json!({"schema_version": SCHEMA_VERSION, "nodes": rows}),
    )?)
}

#[derive(Serialize)]
struct NodeJson {
    name: Option<String>,
    op: String,
    domain: String,
    inputs: Vec<Option<String>>,
    outputs: Vec<ValueJson>,
    attributes: BTreeMap<String, J>,
}

#[derive(Serialize)]
struct GraphJson {
    name: Option<String>,
    inputs: Vec<ValueJson>,
    outputs: Vec<ValueJson>,
    initializers: Vec<J>,
    nodes: Vec<NodeJson>,
}

fn graph_json(g: &Graph) -> GraphJson {
    let order = g
        .nodes_in_order()
        .unwrap_or_else(|_| g.node_ids().collect());
    GraphJson {
        name: g.name.clone(),
        inputs: io(g, g.inputs()),
        outputs: g.outputs().iter().map(|v| value_json(g, *v)).collect(),
        initializers: g
            .initializers()
            .iter()
            .filter_map(|v| {
                let t = g.value(*v).initializer()?;
                Some(json!({"name": g.value(*v).name(), "elem": t.dtype().short_name(), "dims": t.dims, "bytes": t.stored_bytes()}))
            })
            .collect(),
        nodes: order
            .into_iter()
            .map(|n| {
                let node = g.node(n);
                NodeJson {
                    name: node.name.clone(),
                    op: node.op().to_string(),
                    domain: node.domain().to_string(),
                    inputs: node.inputs().iter().map(|v| v.map(|v| g.value(v).name().to_string())).collect(),
                    outputs: node
                        .outputs()
                        .iter()
                        .map(|v| match v {
                            Some(v) => value_json(g, *v),
                            None => ValueJson { name: String::new(), elem: None, dims: None },
                        })
                        .collect(),
                    attributes: node.attributes.iter().map(|a| (a.name().to_string(), attr_json(a))).collect(),
                }
            })
            .collect(),
    }
}

fn attr_json(a: &Attribute) -> J {
    let tensor = |t: &whittle_ir::Tensor| json!({"elem": t.dtype().short_name(), "dims": t.dims});
    match a.kind.unwrap_or(0) {
        kind::FLOAT => json!(a.f),
        kind::INT => json!(a.i),
        kind::STRING => json!(String::from_utf8_lossy(a.s.as_deref().unwrap_or(&[]))),
        kind::FLOATS => json!(a.floats[..]),
        kind::INTS => json!(a.ints[..]),
        kind::STRINGS => json!(
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect::<Vec<_>>()
        ),
        kind::TENSOR => a.t.as_deref().map_or(J::Null, tensor),
        kind::TENSORS => J::Array(a.tensors.iter().map(tensor).collect()),
        kind::GRAPH => a.g.as_deref().map_or(J::Null, |g| json!(graph_json(g))),
        kind::GRAPHS => J::Array(a.graphs.iter().map(|g| json!(graph_json(g))).collect()),
        kind::TYPE_PROTO => json!(type_text(a.tp.as_ref())),
        _ => J::Null,
    }
}

/// The whole graph with inferred types.
pub fn graph(l: &Loaded) -> anyhow::Result<String> {
    let m = &l.model;
    let v = json!({
        "schema_version": SCHEMA_VERSION,
        "ir_version": m.ir_version,
        "opsets": opsets(m),
        "graph": graph_json(&m.graph),
    });
    Ok(serde_json::to_string_pretty(&v)?)
}
