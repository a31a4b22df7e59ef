//! After an export: external data files without the dead space of tensors that are no
//! longer written ([`ExternalLayout::compact`]), and the offsets in the proto that point
//! into them brought along.

use crate::external::ExternalLayout;
use crate::proto;
use std::collections::BTreeMap;

/// Compacts `layout` (pieces at `align`) and rewrites the `offset` entries of every
/// tensor in `p` that points into a location that moved.
pub fn compact(p: &mut proto::ModelProto, layout: &mut ExternalLayout, align: u64) {
    let moved = layout.compact(align);
    if moved.is_empty() {
        return;
    }
    each_tensor_mut(p, &mut |t| tensor(t, &moved));
}

/// Calls `f` on every tensor of an encoded model: initializers and tensor attributes in
/// the graph, its subgraphs and the function bodies.
pub(crate) fn each_tensor_mut(
    p: &mut proto::ModelProto,
    f: &mut dyn FnMut(&mut proto::TensorProto),
) {
    if let Some(g) = &mut p.graph {
        graph(g, f);
    }
    for func in &mut p.functions {
        for n in &mut func.node {
            node(n, f);
        }
        for a in &mut func.attribute_proto {
            for t in a.head.t.iter_mut().chain(a.tail.tensors.iter_mut()) {
                f(t);
            }
        }
    }
}

type Moved = BTreeMap<String, BTreeMap<u64, u64>>;

fn graph(g: &mut proto::GraphProto, f: &mut dyn FnMut(&mut proto::TensorProto)) {
    for t in &mut g.initializer {
        f(t);
    }
    for n in &mut g.node {
        node(n, f);
    }
}

fn node(n: &mut proto::NodeProto, f: &mut dyn FnMut(&mut proto::TensorProto)) {
    for a in &mut n.attribute {
        for t in a.head.t.iter_mut().chain(a.tail.tensors.iter_mut()) {
            f(t);
        }
        for g in a.head.g.iter_mut().chain(a.tail.graphs.iter_mut()) {
            graph(g, f);
        }
    }
}

/// Points `t`'s `offset` entry at where its bytes now are, if its location moved.
fn tensor(t: &mut proto::TensorProto, moved: &Moved) {
    let entry = |t: &proto::TensorProto, key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .and_then(|e| e.value.clone())
    };
    let Some(remap) = entry(t, "location").and_then(|l| moved.get(&l)) else {
        return;
    };
    let old = entry(t, "offset")
        .and_then(|o| o.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let Some(new) = remap.get(&old) else { return };
    match t
        .external_data
        .iter_mut()
        .find(|e| e.key.as_deref() == Some("offset"))
    {
        Some(e) => e.value = Some(new.to_string()),
        None if *new != 0 => t.external_data.push(proto::StringStringEntryProto {
            key: Some("offset".into()),
            value: Some(new.to_string()),
        }),
        None => {}
    }
}
