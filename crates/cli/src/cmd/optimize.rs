//! `whittle optimize`.

use crate::cli::OptimizeArgs;
use crate::summary::Summary;
use anyhow::{Context, bail};
use std::process::ExitCode;
use std::time::Instant;
use whittle_onnx::{ExportOptions, read_model, save_model};

pub fn run(a: OptimizeArgs) -> anyhow::Result<ExitCode> {
    let output = match (&a.output, a.in_place) {
        (Some(o), _) => o.clone(),
        (None, true) => a.input.clone(),
        (None, false) => {
            bail!("no output file: give -o OUT (or --in-place to overwrite the input)")
        }
    };
    if !a.in_place && same_file(&a.input, &output) {
        bail!(
            "{}: output is the input file; use --in-place to overwrite it",
            output.display()
        );
    }
    let start = Instant::now();
    let model = read_model(&a.input)?;
    let before = Summary::of(&model);
    let read_time = start.elapsed();
    tracing::info!(level = ?a.level, "no passes are implemented yet: writing a faithful copy");
    let after = Summary::of(&model);
    let opts = ExportOptions {
        external_threshold: a.external_data_threshold,
        external_location: external_name(&output),
    };
    let report = save_model(&model, &output, &opts)
        .with_context(|| format!("writing {}", output.display()))?;
    let in_bytes = std::fs::metadata(&a.input).map(|m| m.len()).unwrap_or(0);
    println!("{} -> {}", a.input.display(), output.display());
    println!("{}", Summary::table(&before, &after));
    println!(
        "file: {} -> {} bytes{}; read {:.1} ms, total {:.1} ms",
        in_bytes,
        report.model_bytes,
        external_note(&report),
        read_time.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

/// The external data file name used for an output: `<file name>.data`.
fn external_name(output: &std::path::Path) -> String {
    let name = output
        .file_name()
        .map_or_else(|| "model.onnx".into(), |n| n.to_string_lossy().into_owned());
    format!("{name}.data")
}

fn external_note(r: &whittle_onnx::SaveReport) -> String {
    if r.external_files.is_empty() {
        return String::new();
    }
    let total: u64 = r.external_files.iter().map(|f| f.1).sum();
    format!(
        " + {total} bytes external in {} file(s)",
        r.external_files.len()
    )
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
