//! Raising a model's default-domain opset, so a rewrite that needs a newer op version
//! (int4 as blocked `DequantizeLinear`, opset 21; `RMSNormalization`, opset 23; `Swish`,
//! opset 24) can apply to an older export.
//!
//! Between opsets 13 and 24 most op versions only added types or optional attributes whose
//! defaults keep the old meaning; those nodes are left as they are. The ones whose
//! encoding or meaning changed are converted here (the same list as ONNX's own version
//! converter): the reductions' `axes` attribute becomes an input (18), `Split` without a
//! `split` input names its output count (18), `RoiAlign` states the coordinate mode that
//! used to be its default (16), `GridSample` renames its modes (20); from 21 to 24 every
//! change only added types (ONNX's converter has only compatible adapters there). Ops this module cannot
//! convert faithfully (training-mode `BatchNormalization`, `DFT`, `GroupNormalization`)
//! stop the upgrade with an error naming the node; the model is then left untouched.

use thiserror::Error;
use whittle_ir::{Attribute, Graph, Model, NodeId, OpsetImport, Tensor};

/// Why a model's opset could not be raised.
#[derive(Debug, Error, PartialEq)]
pub enum UpgradeError {
    /// The model's opset is outside what this module converts.
    #[error("cannot upgrade opset {from} to {to}: whittle upgrades opsets 13 to 24 only")]
    Range { from: i64, to: i64 },
    /// A node whose meaning changed on the way and that is not converted.
    #[error(
        "cannot upgrade opset {from} to {to}: {op} node '{node}' changed at opset {at} and \
         whittle does not convert it"
    )]
    Node {
        from: i64,
        to: i64,
        op: String,
        node: String,
        at: i64,
    },
    /// Model-local functions carry their own opset imports.
    #[error("cannot upgrade opset {from} to {to}: the model has local functions")]
    Functions { from: i64, to: i64 },
}

/// The reductions whose `axes` moved from an attribute to an input at opset 18
/// (ReduceSum moved at 13).
const AXES_TO_INPUT: &[&str] = &[
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
];

/// The lowest IR version each opset needs (opset 21 brought 4-bit types, IR 10; opsets
/// 23 and 24 came with IR 11 and 12: ONNX 1.18 and 1.19).
fn ir_version_for(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        23 => 11,
        _ => 12,
    }
}

/// Raises the default-domain opset of `model` to `to` (nothing when it is already there)
/// and returns how many nodes were converted. On error the model is unchanged.
pub fn upgrade(model: &mut Model, to: i64) -> Result<usize, UpgradeError> {
    let from = model.opset("").unwrap_or(0);
    if from >= to {
        return Ok(0);
    }
    if !(13..=24).contains(&from) || to > 24 {
        return Err(UpgradeError::Range { from, to });
    }
    if !model.functions.is_empty() {
        return Err(UpgradeError::Functions { from, to });
    }
    let step = Step { from, to };
    check(&model.graph, step)?;
    let converted = convert(&mut model.graph, step);
    for o in model.opset_imports.iter_mut() {
        if o.domain().is_empty() {
            o.version = Some(to);
        }
    }
    if model.opset("").is_none() {
        model.opset_imports.push(OpsetImport {
            domain: Some(String::new()),
            version: Some(to),
        });
    }
    let ir = ir_version_for(to);
    if model.ir_version.is_none_or(|v| v < ir) {
        model.ir_version = Some(ir);
    }
    Ok(converted)
}

/// The opsets an upgrade goes between.
#[derive(Clone, Copy)]
struct Step {
    from: i64,
    to: i64,
}

impl Step {
    /// Whether the upgrade passes the opset where an op changed.
    fn crosses(self, at: i64) -> bool {
        self.from < at && at <= self.to
    }
}

/// Fails on the first node (in `g` or its subgraphs) the upgrade cannot convert.
fn check(g: &Graph, step: Step) -> Result<(), UpgradeError> {
    for n in g.node_ids() {
        let node = g.node(n);
        if !node.domain().is_empty() && node.domain() != "ai.onnx" {
            continue;
        }
        let blocked = match node.op() {
            "BatchNormalization" if node.outputs().len() > 1 => Some(14),
            "DFT" => Some(20),
            "GroupNormalization" => Some(21),
            _ => None,
        };
        if let Some(at) = blocked.filter(|at| step.crosses(*at)) {
            return Err(UpgradeError::Node {
                from: step.from,
                to: step.to,
                op: node.op().to_string(),
                node: node.label(),
                at,
            });
        }
        for sub in node.attributes.iter().flat_map(Attribute::subgraphs) {
            check(sub, step)?;
        }
    }
    Ok(())
}

/// Converts every node of `g` and its subgraphs; returns how many changed.
fn convert(g: &mut Graph, step: Step) -> usize {
    let ids: Vec<NodeId> = g.node_ids().collect();
    let mut converted = 0;
    for n in ids {
        let default_domain = matches!(g.node(n).domain(), "" | "ai.onnx");
        if default_domain && convert_node(g, n, step) {
            converted += 1;
        }
        for sub in g
            .node_mut(n)
            .attributes
            .iter_mut()
            .flat_map(Attribute::subgraphs_mut)
        {
            converted += convert(sub, step);
        }
    }
    converted
}

/// Converts node `n` if its op changed between the two opsets; returns whether it did.
fn convert_node(g: &mut Graph, n: NodeId, step: Step) -> bool {
    let op = g.node(n).op().to_string();
    match op.as_str() {
        op if AXES_TO_INPUT.contains(&op) && step.crosses(18) => axes_to_input(g, n),
        "Split" if step.crosses(18) => split_count(g, n),
        "RoiAlign" if step.crosses(16) => {
            let node = g.node_mut(n);
            let absent = node.attr("coordinate_transformation_mode").is_none();
            if absent {
                node.set_attr(Attribute::string(
                    "coordinate_transformation_mode",
                    "output_half_pixel",
                ));
            }
            absent
        }
        "GridSample" if step.crosses(20) => grid_sample_mode(g, n),
        _ => false,
    }
}

/// `Reduce*(x) {axes=[..]}` → `Reduce*(x, axes)` with `axes` an int64 initializer.
fn axes_to_input(g: &mut Graph, n: NodeId) -> bool {
    let Some(axes) = g.node_mut(n).remove_attr("axes") else {
        return false; // no axes: every axis, at either opset
    };
    let node = g.node(n);
    let base = match (node.name(), node.output(0)) {
        ("", Some(y)) => g.value(y).name().to_string(),
        (name, _) => name.to_string(),
    };
    let v = g.add_initializer(
        &format!("{base}_axes"),
        Tensor::from_i64(vec![axes.ints.len() as i64], &axes.ints),
    );
    g.set_input(n, 1, Some(v));
    true
}

/// `Split(x)` without a `split` input gets `num_outputs` (required from opset 18).
fn split_count(g: &mut Graph, n: NodeId) -> bool {
    let node = g.node(n);
    if node.input(1).is_some() || node.attr("split").is_some() {
        return false;
    }
    let count = node.outputs().len() as i64;
    g.node_mut(n).set_attr(Attribute::int("num_outputs", count));
    true
}

/// GridSample's `bilinear`/`bicubic` are `linear`/`cubic` from opset 20.
fn grid_sample_mode(g: &mut Graph, n: NodeId) -> bool {
    let node = g.node_mut(n);
    let renamed = match node.attr("mode").and_then(|a| a.s.as_deref()) {
        Some(b"bilinear") => "linear",
        Some(b"bicubic") => "cubic",
        _ => return false,
    };
    node.set_attr(Attribute::string("mode", renamed));
    true
}
