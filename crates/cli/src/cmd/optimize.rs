//! `whittle optimize`.

use crate::cli::OptimizeArgs;
use crate::report::{self, Report, Side};
use crate::settings::optimizer_for;
use crate::summary::Summary;
use crate::testinputs;
use anyhow::{Context, bail};
use std::process::ExitCode;
use std::time::Instant;
use whittle::{LossyCheck, Optimizer, RunOptions, Verification, Verify};
use whittle_ir::text::{PrintOptions, print_model};
use whittle_onnx::{ExportOptions, Saved, read_model, save_model};
use whittle_passes::pipeline::all_passes;

pub fn run(a: OptimizeArgs) -> anyhow::Result<ExitCode> {
    if a.check {
        // --check distinguishes "would change" (1) from failure (2).
        return Ok(check(&a).unwrap_or_else(|e| {
            eprintln!("error: {}", crate::one_line(&e));
            ExitCode::from(2)
        }));
    }
    optimize(a)
}

/// `--check`: optimize in memory and compare with what OUT holds.
fn check(a: &OptimizeArgs) -> anyhow::Result<ExitCode> {
    let input = single_input(a)?;
    let output = a.output.clone().context("--check needs -o OUT")?;
    let (optimizer, _) = optimizer_for(a, &input)?;
    let mut model = read_model(&input)?;
    let verify = verify_settings(a, &model)?;
    let run = RunOptions {
        verify: verify.as_ref().map(|v| &v.0),
        ..RunOptions::default()
    };
    optimizer.execute(&mut model, run)?;
    let opts = ExportOptions {
        relocate_external: same_folder(&input, &output),
        ..optimizer.export_options(&output)
    };
    match whittle_onnx::compare_saved(&model, &output, &opts)? {
        Saved::UpToDate => {
            println!("{}: up to date", output.display());
            return Ok(ExitCode::SUCCESS);
        }
        Saved::Missing(f) if f == output => {
            println!("{}: would be created", output.display());
            return Ok(ExitCode::from(1));
        }
        Saved::Missing(f) => println!("{}: would be created", f.display()),
        Saved::Differs(f) if f != output => println!("{}: would change", f.display()),
        Saved::Differs(_) => {}
    }
    let current = whittle_onnx::read_model(&output)
        .map(|m| Summary::of(&m))
        .unwrap_or_default();
    println!("{}: would change", output.display());
    println!(
        "{}",
        Summary::table_with(&current, &Summary::of(&model), ["now", "new"])
    );
    Ok(ExitCode::from(1))
}

fn optimize(a: OptimizeArgs) -> anyhow::Result<ExitCode> {
    if a.list_passes {
        return Ok(list_passes());
    }
    let many = |p: &std::path::Path| p.is_dir() || crate::cmd::batch::is_glob(p);
    if a.models.len() > 1 || a.models.first().is_some_and(|p| many(p)) {
        return crate::cmd::batch::run(&a);
    }
    let input = single_input(&a)?;
    let (optimizer, config) = optimizer_for(&a, &input)?;
    let output = output_path(&a, &input)?;
    check_print_after(&a, &optimizer)?;
    let start = Instant::now();
    let mut model = read_model(&input)?;
    let before = Summary::of(&model);
    let read_time = start.elapsed();
    let verify = verify_settings(&a, &model)?;
    let spin = crate::progress::spinner(&input.display().to_string());
    // With --verify a pass may run in attempts that are rolled back; the last listing
    // of the pass is the one kept, so listings are printed once the run is done.
    let mut listing: Option<String> = None;
    let mut observe = |pass: &str, m: &whittle_ir::Model| {
        spin.set_message(format!("{pass} done"));
        if a.print_after.as_deref() == Some(pass) {
            let opts = PrintOptions {
                max_values: Some(4),
                color: false,
            };
            listing = Some(print_model(m, &opts));
        }
    };
    let run = RunOptions {
        verify: verify.as_ref().map(|v| &v.0),
        rewrite_limit: a.bisect_limit,
        observer: Some(&mut observe),
    };
    let done = optimizer
        .execute(&mut model, run)
        .with_context(|| match verify {
            Some(_) => format!("optimizing {} with --verify", input.display()),
            None => format!("optimizing {}", input.display()),
        })?;
    spin.finish_and_clear();
    if let (Some(pass), Some(text)) = (&a.print_after, &listing) {
        eprint!("# after {pass}\n{text}");
    }
    let after = Summary::of(&model);
    let opts = ExportOptions {
        relocate_external: !a.in_place && same_folder(&input, &output),
        ..optimizer.export_options(&output)
    };
    let saved = save_model(&model, &output, &opts)
        .with_context(|| format!("writing {}", output.display()))?;
    let in_bytes = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    let what = verify.as_ref().map(|v| v.1.as_str()).unwrap_or_default();
    let (read_ms, total_ms) = (
        read_time.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3,
    );
    let h = Finished {
        input: &input,
        output: &output,
        config: config.as_ref().map(|c| c.path.as_path()),
        sides: [&before, &after],
        in_bytes,
        saved: &saved,
        ms: [read_ms, total_ms],
    };
    if !crate::progress::quiet() {
        print!("{}", h.text(&done, what));
    }
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&h.json(&done, what))?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a single-model run writes: `-o OUT`, or the input with `--in-place`.
fn output_path(a: &OptimizeArgs, input: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let output = match (&a.output, a.in_place) {
        (Some(o), _) => o.clone(),
        (None, true) => input.to_path_buf(),
        (None, false) => {
            bail!("no output file: give -o OUT (or --in-place to overwrite the input)")
        }
    };
    if !a.in_place && same_file(input, &output) {
        bail!(
            "{}: output is the input file; use --in-place to overwrite it",
            output.display()
        );
    }
    Ok(output)
}

/// `--print-after NAME` must name a pass or step of this run.
fn check_print_after(a: &OptimizeArgs, optimizer: &Optimizer) -> anyhow::Result<()> {
    let Some(p) = &a.print_after else {
        return Ok(());
    };
    let names = optimizer.stage_names()?;
    if !names.contains(&p.as_str()) {
        bail!(
            "--print-after '{p}': not a pass of this run (running: {})",
            names.join(", ")
        );
    }
    Ok(())
}

/// With `--verify`: the input sets (and where they came from), tolerance and mode.
pub fn verify_settings(
    a: &OptimizeArgs,
    model: &whittle_ir::Model,
) -> anyhow::Result<Option<(Verify, String)>> {
    let Some(mode) = &a.verify else {
        return Ok(None);
    };
    let (sets, what) = testinputs::input_sets(model, &a.inputs)?;
    let verify = Verify {
        sets,
        tolerance: testinputs::tolerance(&a.tolerance),
        strict: mode == "strict",
    };
    Ok(Some((verify, what)))
}

/// `--list-passes`: a line per pass.
fn list_passes() -> ExitCode {
    for p in all_passes() {
        println!("{:<20} {}", p.name(), p.description());
    }
    ExitCode::SUCCESS
}

/// What a single-model run reports: to people on stdout (nothing with `-q`) and as JSON
/// (`--report`).
struct Finished<'a> {
    input: &'a std::path::Path,
    output: &'a std::path::Path,
    /// The config file the settings came from.
    config: Option<&'a std::path::Path>,
    /// The model before and after.
    sides: [&'a Summary; 2],
    in_bytes: u64,
    saved: &'a whittle_onnx::SaveReport,
    /// Reading and the whole run, in ms.
    ms: [f64; 2],
}

impl Finished<'_> {
    /// The `--report` JSON.
    fn json(&self, done: &whittle::Report, what: &str) -> Report {
        Report {
            schema_version: report::SCHEMA_VERSION,
            input: self.input.display().to_string(),
            output: self.output.display().to_string(),
            before: Side::new(self.sides[0], self.in_bytes),
            after: Side::new(self.sides[1], self.saved.model_bytes),
            passes: report::passes(&done.passes),
            rewrites: report::rewrites(&done.rewrites),
            notes: report::notes(&done.notes),
            verify: done
                .verification
                .as_ref()
                .map(|v| report::verify_json(v, done.lossy.as_ref(), what)),
            read_ms: self.ms[0],
            total_ms: self.ms[1],
        }
    }

    /// The before/after table, what each pass did, the file sizes, the lossy notes and
    /// what verification found.
    fn text(&self, done: &whittle::Report, what: &str) -> String {
        let mut out = format!("{} -> {}\n", self.input.display(), self.output.display());
        if let Some(c) = self.config {
            out += &format!("settings from {}\n", c.display());
        }
        out += &format!("{}\n", Summary::table(self.sides[0], self.sides[1]));
        for s in &done.passes {
            out += &format!(
                "pass {:<16} {:>6} rewrites {:>8.2} ms\n",
                s.name,
                s.rewrites,
                s.time.as_secs_f64() * 1e3
            );
        }
        out += &format!(
            "file: {} -> {} bytes{}; read {:.1} ms, total {:.1} ms\n",
            self.in_bytes,
            self.saved.model_bytes,
            external_note(self.saved),
            self.ms[0],
            self.ms[1]
        );
        for (node, note) in &done.notes {
            out += &format!("{note} at '{node}'\n");
        }
        if let Some(v) = &done.verification {
            out += &verify_summary(v, done.lossy.as_ref(), what);
        }
        out
    }
}

/// What `--verify` checked and did, for people.
fn verify_summary(v: &Verification, lossy: Option<&LossyCheck>, what: &str) -> String {
    let worst = v.diffs.iter().flatten().fold((0f64, 1f64), |(m, c), d| {
        (m.max(d.max_abs), c.min(d.cosine))
    });
    let mut out = format!(
        "verified against the original on {what}: max abs {:.3e}, min cosine {:.6} ({} pipeline runs)\n",
        worst.0, worst.1, v.runs
    );
    for (pass, rule, site, k) in &v.rolled_back {
        out += &format!(
            "rolled back rewrite #{k}: {pass}/{rule} at '{site}' (it changed the outputs)\n"
        );
    }
    if let Some(l) = lossy {
        let budget = match l.budget {
            Some(b) if l.held => format!("within budget {b}"),
            Some(b) => format!("MISSES budget {b}"),
            None => "no budget given".to_string(),
        };
        out += &format!(
            "lossy steps on the same inputs: mean cosine {:.6}, top-1 {:.4}, relative error {:.3e} ({budget})\n",
            l.score.cosine, l.score.top1, l.score.rel_err
        );
    }
    out
}

/// The one input of a single-model run.
fn single_input(a: &OptimizeArgs) -> anyhow::Result<std::path::PathBuf> {
    match &a.models[..] {
        [one] => Ok(one.clone()),
        [] => bail!("no input model given"),
        _ => bail!("several inputs: give -o a folder"),
    }
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

/// True when both paths are in the same folder.
fn same_folder(a: &std::path::Path, b: &std::path::Path) -> bool {
    let dir = |p: &std::path::Path| {
        let d = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        d.canonicalize().ok()
    };
    matches!((dir(a), dir(b)), (Some(x), Some(y)) if x == y)
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
