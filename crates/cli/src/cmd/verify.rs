//! `whittle verify A B`: both models on the same inputs in one runtime (`--runtime`),
//! every output compared.

use crate::cli::{Format, VerifyArgs};
use crate::testinputs::{input_sets, tolerance};
use serde_json::json;
use std::fmt::Write;
use whittle_eval::{OutputDiff, Runner, Tolerance, compare_output};
use whittle_onnx::read_model;

/// Schema version of `verify --format json`.
const SCHEMA_VERSION: u32 = 1;

pub fn run(args: VerifyArgs) -> anyhow::Result<u8> {
    let (out, ok) = render(&args)?;
    print!("{out}");
    Ok(if ok { 0 } else { 1 })
}

/// What `whittle verify` prints for `args`, and whether the models agree.
pub fn render(args: &VerifyArgs) -> anyhow::Result<(String, bool)> {
    let ma = read_model(&args.a)?;
    let mb = read_model(&args.b)?;
    let (sets, what) = input_sets(&ma, &args.inputs)?;
    let tol = tolerance(&args.tolerance);
    let label = |p: &std::path::Path| p.display().to_string();
    let first = sets.first().cloned().unwrap_or_default();
    let rt = args.runtime.load()?;
    eprintln!("runtime: {}", rt.describe());
    let ra = Runner::exact(&rt, &ma, &label(&args.a), &first)?;
    let rb = Runner::exact(&rt, &mb, &label(&args.b), &first)?;
    let g = &ma.graph;
    let names: Vec<String> = g
        .outputs()
        .iter()
        .map(|v| g.value(*v).name().to_string())
        .collect();
    let mut rows: Vec<(usize, OutputDiff)> = Vec::new();
    let mut count_ok = true;
    for (k, set) in sets.iter().enumerate() {
        let (x, y) = (ra.run(set)?, rb.run(set)?);
        count_ok &= x.len() == y.len();
        for ((p, q), n) in x.iter().zip(&y).zip(&names) {
            rows.push((k, compare_output(n, p, q, &tol)));
        }
    }
    let ok = count_ok && rows.iter().all(|(_, d)| d.ok);
    let out = match args.format {
        Format::Json => json_report(&rows, ok, &tol, &what)?,
        _ => text_report(&rows, ok, &tol, &what, count_ok),
    };
    Ok((out, ok))
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(String::new, |v| format!("{:.1}%", v * 100.0))
}

/// The comparison table and verdict.
pub fn text_report(
    rows: &[(usize, OutputDiff)],
    ok: bool,
    tol: &Tolerance,
    what: &str,
    count_ok: bool,
) -> String {
    let mut out = format!(
        "{:<28} {:>4} {:>16} {:>10} {:>10} {:>10} {:>8} {:>4}\n",
        "output", "set", "shape", "max abs", "max rel", "cosine", "argmax", "ok"
    );
    for (k, d) in rows {
        let shape = if d.shape_a == d.shape_b {
            format!("{:?}", d.shape_a)
        } else {
            format!("{:?}!={:?}", d.shape_a, d.shape_b)
        };
        let _ = writeln!(
            out,
            "{:<28} {:>4} {:>16} {:>10.3e} {:>10.3e} {:>10.6} {:>8} {:>4}",
            d.name,
            k,
            shape,
            d.max_abs,
            d.max_rel,
            d.cosine,
            pct(d.argmax_agreement),
            if d.ok { "yes" } else { "NO" }
        );
    }
    if !count_ok {
        out += "the models have different numbers of outputs\n";
    }
    let cos = tol
        .min_cosine
        .map_or_else(String::new, |c| format!(", cosine >= {c}"));
    let _ = writeln!(
        out,
        "{}: rtol {:e}, atol {:e}{cos}; inputs: {what}",
        if ok {
            "verified: within tolerance"
        } else {
            "NOT verified: outside tolerance"
        },
        tol.rtol,
        tol.atol
    );
    out
}

fn json_report(
    rows: &[(usize, OutputDiff)],
    ok: bool,
    tol: &Tolerance,
    what: &str,
) -> anyhow::Result<String> {
    let outputs: Vec<serde_json::Value> = rows
        .iter()
        .map(|(k, d)| {
            let num = |x: f64| if x.is_finite() { json!(x) } else { json!(null) };
            json!({
                "set": k, "name": d.name, "shape_a": d.shape_a, "shape_b": d.shape_b,
                "max_abs": num(d.max_abs), "max_rel": num(d.max_rel), "cosine": num(d.cosine),
                "argmax_agreement": d.argmax_agreement, "ok": d.ok,
            })
        })
        .collect();
    let v = json!({
        "schema_version": SCHEMA_VERSION,
        "verified": ok,
        "tolerance": {"rtol": tol.rtol, "atol": tol.atol, "min_cosine": tol.min_cosine},
        "inputs": what,
        "outputs": outputs,
    });
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}
