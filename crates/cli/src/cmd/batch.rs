//! `whittle optimize A B dir/ 'glob/**/*.onnx' -o OUT_DIR`: many models in parallel, one
//! combined report.

use crate::cli::OptimizeArgs;
use crate::job::{Request, Resolved, Source};
use crate::progress;
use crate::report::{BatchEntry, BatchReport, Report};
use crate::settings::optimizer_for;
use anyhow::{Context, bail};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use whittle_onnx::InputFiles;
use whittle_onnx::targets::{data_name_for, folder_of, same_file};

/// One model to do: where it is and where it goes, relative to the output folder.
struct Job {
    input: PathBuf,
    relative: PathBuf,
}

/// Every `*.onnx` under `dir`, sorted, with paths relative to `base`.
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

/// True for an argument that is a pattern (the shell did not expand it, e.g. quoted).
pub fn is_glob(p: &Path) -> bool {
    !p.exists() && p.to_string_lossy().contains(['*', '?', '['])
}

/// The folder part of a pattern before its first wildcard (relative paths start there).
fn glob_base(pattern: &Path) -> PathBuf {
    pattern
        .components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .collect()
}

/// The models a glob matches (sorted), relative to its literal prefix.
fn expand(pattern: &Path, out: &mut Vec<Job>) -> anyhow::Result<()> {
    let text = pattern.to_string_lossy();
    let base = glob_base(pattern);
    let mut found: Vec<PathBuf> = glob::glob(&text)
        .with_context(|| format!("bad pattern '{text}'"))?
        .filter_map(Result::ok)
        .collect();
    found.sort();
    let before = out.len();
    for p in found {
        if p.is_dir() {
            walk(&p, &base, out)?;
        } else if p.is_file() {
            let relative = p.strip_prefix(&base).unwrap_or(&p).to_path_buf();
            out.push(Job { input: p, relative });
        }
    }
    if out.len() == before {
        bail!("'{text}' matches no model");
    }
    Ok(())
}

fn jobs(inputs: &[PathBuf]) -> anyhow::Result<Vec<Job>> {
    let mut out = Vec::new();
    for i in inputs {
        if i.is_dir() {
            walk(i, i, &mut out)?;
        } else if is_glob(i) {
            expand(i, &mut out)?;
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

/// The same file named twice is done once; two files for one output is an error.
fn dedup(jobs: Vec<Job>, out_dir: &Path) -> anyhow::Result<Vec<Job>> {
    let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut unique = Vec::new();
    for j in jobs {
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
    Ok(unique)
}

/// Each job's plan (its settings resolved once, here, so bad ones fail before any work),
/// after refusing a batch in which two outputs would write one file (a model or a data
/// file), or an output would write over a file that one of the inputs reads. An input
/// that cannot be read is left to fail on its own.
fn plan(jobs: &[Job], out_dir: &Path, args: &OptimizeArgs) -> anyhow::Result<Vec<Resolved>> {
    let mut plans = Vec::with_capacity(jobs.len());
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    let mut reads: Vec<(PathBuf, PathBuf)> = Vec::new();
    for j in jobs {
        let plan = optimizer_for(args, &j.input)?;
        let out = out_dir.join(&j.relative);
        let name = data_name_for(&out, plan.optimizer.external_data_name());
        plans.push(plan);
        let files = match whittle_onnx::read_model_lazy(&j.input) {
            Ok(model) => InputFiles::of(&model, &j.input),
            Err(_) => InputFiles {
                model: j.input.clone(),
                data: Vec::new(),
            },
        };
        reads.extend(files.all().map(|f| (f.to_path_buf(), j.input.clone())));
        writes.push((out.clone(), format!("the output for {}", j.input.display())));
        let data = folder_of(&out).join(name);
        writes.push((data, format!("the data file of {}", out.display())));
    }
    for (i, (file, what)) in writes.iter().enumerate() {
        if let Some((_, other)) = writes[..i].iter().find(|(f, _)| f == file) {
            bail!(
                "{} would be written twice, as {other} and as {what}: nothing was written \
                 (give the models other names, or another external data name)",
                file.display()
            );
        }
        if let Some((_, input)) = reads.iter().find(|(f, _)| same_file(f, file)) {
            bail!(
                "{} would be {what}, but {} reads it: nothing was written (choose another \
                 output folder)",
                file.display(),
                input.display()
            );
        }
    }
    Ok(plans)
}

/// Optimizes one model into `out` with the settings that apply to it.
fn optimize_one(job: &Job, plan: Resolved, out: &Path, req: &Request) -> anyhow::Result<Report> {
    let outcome = crate::job::run_planned(&Source::File(job.input.clone()), plan, req, None)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let saved = outcome.save(out)?;
    Ok(outcome.report(&out.display().to_string(), saved.model_bytes))
}

pub fn run(args: &OptimizeArgs) -> anyhow::Result<u8> {
    let Some(out_dir) = &args.output else {
        bail!("several models: give -o OUT_DIR");
    };
    if args.in_place || args.check || args.print_after.is_some() || args.certificate.is_some() {
        bail!("--in-place, --check, --print-after and --certificate take one model at a time");
    }
    let jobs = dedup(jobs(&args.models)?, out_dir)?;
    if jobs.is_empty() {
        bail!("no .onnx files in the given inputs");
    }
    // Bad settings (pass names, config keys) and outputs that would collide fail before
    // any work.
    let plans = plan(&jobs, out_dir, args)?;
    let req = crate::settings::request(args)?;
    let bar = progress::bar(jobs.len() as u64, "optimizing");
    let results: Vec<anyhow::Result<Report>> = jobs
        .par_iter()
        .zip(plans)
        .map(|(j, plan)| {
            let r = optimize_one(j, plan, &out_dir.join(&j.relative), &req);
            bar.set_message(j.relative.display().to_string());
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let entries: Vec<BatchEntry> = jobs
        .iter()
        .zip(results)
        .map(|(j, r)| BatchEntry::new(&j.input, &out_dir.join(&j.relative), r))
        .collect();
    let combined = BatchReport::new(entries);
    if progress::quiet() {
        // Errors only: one line per model that failed.
        for e in combined.models.iter().filter(|e| !e.ok) {
            eprintln!(
                "error: {}: {}",
                e.input,
                e.error.as_deref().unwrap_or("failed")
            );
        }
    } else {
        print!("{}", combined.text());
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&combined)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if combined.totals.failed == 0 { 0 } else { 1 })
}
