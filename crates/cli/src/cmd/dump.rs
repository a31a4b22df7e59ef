//! `whittle dump`.

use crate::cli::DumpArgs;
use crate::summary::Summary;
use std::process::ExitCode;
use whittle_ir::{Dim, Model, Type, TypeKind, ValueId};
use whittle_onnx::read_model;

pub fn run(a: DumpArgs) -> anyhow::Result<ExitCode> {
    let model = read_model(&a.input)?;
    print!("{}", header(&model));
    let s = Summary::of(&model);
    println!("nodes: {}", s.nodes);
    for (op, n) in &s.ops {
        println!("  {op:<24} {n}");
    }
    println!(
        "initializers: {} ({} bytes)",
        s.initializers, s.initializer_bytes
    );
    Ok(ExitCode::SUCCESS)
}

/// IR version, opsets, producer, inputs and outputs.
fn header(m: &Model) -> String {
    let mut out = String::new();
    let opsets: Vec<String> = m
        .opset_imports
        .iter()
        .map(|o| {
            format!(
                "{}={}",
                if o.domain().is_empty() {
                    "ai.onnx"
                } else {
                    o.domain()
                },
                o.version.unwrap_or(0)
            )
        })
        .collect();
    out += &format!("ir_version: {}\n", m.ir_version.unwrap_or(0));
    out += &format!("opsets: {}\n", opsets.join(", "));
    out += &format!(
        "producer: {} {}\n",
        m.producer_name.as_deref().unwrap_or("?"),
        m.producer_version.as_deref().unwrap_or("")
    );
    let g = &m.graph;
    let io = |ids: &[ValueId]| -> String {
        ids.iter()
            .filter(|v| g.value(**v).initializer().is_none())
            .map(|v| {
                format!(
                    "  {}: {}\n",
                    g.value(*v).name(),
                    type_str(g.value(*v).info.ty.as_ref())
                )
            })
            .collect()
    };
    out += &format!("inputs:\n{}", io(g.inputs()));
    out += &format!("outputs:\n{}", io(g.outputs()));
    out
}

/// `f32[batch,3,224,224]`, `?` for unknown parts.
pub fn type_str(t: Option<&Type>) -> String {
    let Some(t) = t else { return "?".into() };
    match &t.kind {
        TypeKind::Tensor { elem, shape } => {
            let e = elem.map_or_else(|| "?".into(), |e| e.short_name());
            match shape {
                None => format!("{e}[...]"),
                Some(s) => {
                    let dims: Vec<String> = s
                        .iter()
                        .map(|d| match &d.dim {
                            Dim::Known(n) => n.to_string(),
                            Dim::Param(p) => p.clone(),
                            Dim::Unknown => "?".into(),
                        })
                        .collect();
                    format!("{e}[{}]", dims.join(","))
                }
            }
        }
        TypeKind::Sequence(_) => "sequence".into(),
        TypeKind::Map { .. } => "map".into(),
        TypeKind::Optional(_) => "optional".into(),
        TypeKind::SparseTensor { .. } => "sparse".into(),
        TypeKind::Opaque { .. } => "opaque".into(),
        TypeKind::Unset => "?".into(),
    }
}
