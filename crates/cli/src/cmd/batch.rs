//! `whittle optimize A B dir/ -o OUT_DIR`: many models in parallel, one combined report.

use crate::cli::OptimizeArgs;
use crate::shapes;
use crate::summary::Summary;
use anyhow::{Context, bail};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use whittle_onnx::{ExportOptions, read_model, save_model};
use whittle_passes::{DEFAULT_FOLD_LIMIT, PassCx, Pipeline};

/// One model to do: where it is and where it goes, relative to the output folder.
struct Job {
    input: PathBuf,
    relative: PathBuf,
}

/// Every `*.onnx` under `dir`, sorted, with paths relative to it.
fn walk(dir: &Path, base: &Path, out: &mut Vec<Job>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, base, out)?;
        } else if p.extension().is_some_and(|e| e == "onnx") {
            let relative = p.strip_prefix(base).unwrap_or(&p).to_path_buf();
            out.push(Job { input: p, relative });
        }
    }
    Ok(())
}

fn jobs(inputs: &[PathBuf]) -> anyhow::Result<Vec<Job>> {
    let mut out = Vec::new();
    for i in inputs {
        if i.is_dir() {
            walk(i, i, &mut out)?;
        } else {
            let name = i
                .file_name()
                .with_context(|| format!("{}: not a file", i.display()))?;
            out.push(Job {
                input: i.clone(),
                relative: PathBuf::from(name),
            });
        }
    }
    Ok(out)
}

/// Optimizes one model into `out`; the summary before and after.
fn one(
    job: &Job,
    out: &Path,
    pipeline: &Pipeline,
    a: &OptimizeArgs,
) -> anyhow::Result<(Summary, Summary)> {
    let mut model = read_model(&job.input)?;
    let before = Summary::of(&model);
    let mut cx = PassCx {
        input_shapes: shapes::parse_all(&a.inputs.input_shape)?,
        fold_limit: a.fold_limit.unwrap_or(DEFAULT_FOLD_LIMIT),
        ..PassCx::default()
    };
    pipeline
        .run(&mut model, &mut cx)
        .with_context(|| format!("optimizing {}", job.input.display()))?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let name = out
        .file_name()
        .map_or_else(|| "model.onnx".into(), |n| n.to_string_lossy().into_owned());
    let opts = ExportOptions {
        external_threshold: a.external_data_threshold,
        external_location: format!("{name}.data"),
        relocate_external: false,
    };
    save_model(&model, out, &opts).with_context(|| format!("writing {}", out.display()))?;
    Ok((before, Summary::of(&model)))
}

pub fn run(
    a: &OptimizeArgs,
    pipeline_for: fn(&OptimizeArgs) -> anyhow::Result<Pipeline>,
) -> anyhow::Result<ExitCode> {
    let Some(out_dir) = &a.output else {
        bail!("several models: give -o OUT_DIR");
    };
    if a.in_place || a.check || a.verify.is_some() || a.print_after.is_some() || a.report.is_some()
    {
        bail!("--in-place, --check, --verify, --print-after and --report take one model at a time");
    }
    pipeline_for(a)?; // reject bad pass names before any work
    let mut jobs = jobs(&a.models)?;
    // The same file named twice is done once; two files for one output is an error.
    let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut unique = Vec::new();
    for j in jobs.drain(..) {
        let key = j.input.canonicalize().unwrap_or_else(|_| j.input.clone());
        match seen.iter().find(|(rel, _)| *rel == j.relative) {
            Some((_, k)) if *k == key => continue,
            Some(_) => bail!(
                "two inputs would both be written to {}",
                out_dir.join(&j.relative).display()
            ),
            None => seen.push((j.relative.clone(), key)),
        }
        unique.push(j);
    }
    let jobs = unique;
    if jobs.is_empty() {
        bail!("no .onnx files in the given inputs");
    }
    let results: Vec<anyhow::Result<(Summary, Summary)>> = jobs
        .par_iter()
        .map(|j| {
            let target = out_dir.join(&j.relative);
            if target.canonicalize().ok() == j.input.canonicalize().ok() {
                bail!("{}: output is the input file", target.display());
            }
            one(j, &target, &pipeline_for(a)?, a)
        })
        .collect();
    let mut failed = 0;
    for (j, r) in jobs.iter().zip(&results) {
        match r {
            Ok((b, af)) => println!(
                "{} -> {}: nodes {} -> {}, initializer bytes {} -> {}",
                j.input.display(),
                out_dir.join(&j.relative).display(),
                b.nodes,
                af.nodes,
                b.initializer_bytes,
                af.initializer_bytes
            ),
            Err(e) => {
                failed += 1;
                println!("{}: FAILED: {}", j.input.display(), crate::one_line(e));
            }
        }
    }
    println!(
        "{} models: {} optimized, {failed} failed",
        jobs.len(),
        jobs.len() - failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
