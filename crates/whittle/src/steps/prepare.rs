//! The phases around the passes that are not rewrites of their own: raising the opset
//! before anything runs (exact conversions only) and declaring the domains lossy steps
//! introduced once they are done.

use crate::modes::Quantize;
use crate::optimizer::Error;
use whittle_compress::quant::Int4Format;
use whittle_ir::{Model, OpsetImport};
use whittle_passes::PassCx;

/// `--opset N`, and the opset 21 that int4 as blocked DequantizeLinear needs: an older
/// model is upgraded first ([`whittle_passes::opset::upgrade`]), or refused naming the
/// node that stops it.
pub(crate) fn raise(
    model: &mut Model,
    opset: Option<i64>,
    q: Option<&Quantize>,
    cx: &mut PassCx,
) -> Result<(), Error> {
    if let Some(to) = opset {
        raise_opset(model, to, "", cx)?;
    }
    let blocked_int4 = matches!(
        q,
        Some(Quantize::Int4(o)) if o.int4_format == Int4Format::DequantizeLinear
    );
    if blocked_int4 && model.opset("").unwrap_or(0) < 21 && has_dense(&model.graph) {
        raise_opset(model, 21, " for blocked DequantizeLinear", cx).map_err(|e| {
            Error::Config(format!(
                "int4 as blocked DequantizeLinear needs opset 21: {e} (use --int4-format \
                 matmulnbits)"
            ))
        })?;
    }
    Ok(())
}

/// Raises the model's default-domain opset to `to`, named by `why` in the report;
/// lowering is refused.
fn raise_opset(model: &mut Model, to: i64, why: &str, cx: &mut PassCx) -> Result<(), Error> {
    let from = model.opset("").unwrap_or(0);
    if to < from {
        return Err(Error::Config(format!(
            "opset {to}: the model is opset {from} and whittle does not lower opsets"
        )));
    }
    let converted =
        whittle_passes::opset::upgrade(model, to).map_err(|e| Error::Config(e.to_string()))?;
    if to > from {
        cx.journal.notes.push((
            "graph".into(),
            format!("opset {from} -> {to}{why} ({converted} nodes converted)"),
        ));
    }
    Ok(())
}

/// Whether `g` has a MatMul or Gemm, which int4 might take (no upgrade without one).
fn has_dense(g: &whittle_ir::Graph) -> bool {
    g.node_ids()
        .any(|n| matches!(g.node(n).op(), "MatMul" | "Gemm"))
}

/// Adds the opset imports of domains the passes introduced (com.microsoft for
/// MatMulNBits) when the model does not import them yet.
pub(crate) fn declare_domains(model: &mut Model) {
    let used: Vec<String> = model
        .graph
        .node_ids()
        .map(|n| model.graph.node(n).domain().to_string())
        .filter(|d| d == "com.microsoft")
        .collect();
    for d in used {
        if model.opset(&d).is_none() {
            model.opset_imports.push(OpsetImport {
                domain: Some(d),
                version: Some(1),
            });
        }
    }
}
