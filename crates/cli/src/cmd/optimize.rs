//! `whittle optimize`.

use crate::cli::OptimizeArgs;
use crate::job::{self, Source};
use crate::settings::{optimizer_for, request};
use crate::summary::Summary;
use anyhow::{Context, bail};
use whittle::Optimizer;
use whittle_ir::text::{PrintOptions, print_model};
use whittle_onnx::Saved;
use whittle_passes::pipeline::all_passes;

pub fn run(args: OptimizeArgs) -> anyhow::Result<u8> {
    if args.check {
        // --check distinguishes "would change" (1) from failure (2).
        return Ok(check(&args).unwrap_or_else(|e| {
            eprintln!("error: {}", crate::one_line(&e));
            2
        }));
    }
    optimize(args)
}

/// `--check`: optimize in memory and compare with what OUT holds.
fn check(args: &OptimizeArgs) -> anyhow::Result<u8> {
    let input = single_input(args)?;
    let output = args.output.clone().context("--check needs -o OUT")?;
    let outcome = job::run(&Source::File(input), &request(args)?, None)?;
    let opts = outcome.export_options();
    let model = &outcome.model;
    match whittle_onnx::compare_saved(model, &output, &opts)? {
        Saved::UpToDate => {
            println!("{}: up to date", output.display());
            return Ok(0);
        }
        Saved::Missing(f) if f == output => {
            println!("{}: would be created", output.display());
            return Ok(1);
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
        crate::summary::table_with(&current, &Summary::of(model), ["now", "new"])
    );
    Ok(1)
}

fn optimize(args: OptimizeArgs) -> anyhow::Result<u8> {
    if args.list_passes {
        return Ok(list_passes());
    }
    let many = |p: &std::path::Path| p.is_dir() || crate::cmd::batch::is_glob(p);
    if args.models.len() > 1 || args.models.first().is_some_and(|p| many(p)) {
        return crate::cmd::batch::run(&args);
    }
    let input = single_input(&args)?;
    let output = output_path(&args, &input)?;
    let plan = optimizer_for(&args, &input)?;
    check_print_after(&args, &plan.optimizer)?;
    let spin = crate::progress::spinner(&input.display().to_string());
    // With --verify a pass may run in attempts that are rolled back; the last listing
    // of the pass is the one kept, so listings are printed once the run is done.
    let mut listing: Option<String> = None;
    let mut observe = |pass: &str, m: &whittle_ir::Model| {
        spin.set_message(format!("{pass} done"));
        if args.print_after.as_deref() == Some(pass) {
            let opts = PrintOptions {
                max_values: Some(4),
                color: false,
            };
            listing = Some(print_model(m, &opts));
        }
    };
    let req = request(&args)?;
    let source = Source::File(input.clone());
    let outcome = job::run_planned(&source, plan, &req, Some(&mut observe))?;
    spin.finish_and_clear();
    if let (Some(pass), Some(text)) = (&args.print_after, &listing) {
        eprint!("# after {pass}\n{text}");
    }
    let saved = outcome.save(&output)?;
    let shown = output.display().to_string();
    if !crate::progress::quiet() {
        print!("{}", outcome.text(&shown, &saved));
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&outcome.report(&shown, saved.model_bytes))?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.certificate {
        let cert = whittle::certificate::certificate(&outcome.done, &input, &output)
            .with_context(|| format!("reading {} for the certificate", output.display()))?;
        let json = serde_json::to_string(&cert)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        let original = whittle_onnx::read_model(&input)?;
        let page = crate::html::optimize_page(&input, &output, &original, &outcome);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(0)
}

/// Where a single-model run writes: `-o OUT`, or the input with `--in-place`.
fn output_path(args: &OptimizeArgs, input: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let output = match (&args.output, args.in_place) {
        (Some(o), _) => o.clone(),
        (None, true) => input.to_path_buf(),
        (None, false) => {
            bail!("no output file: give -o OUT (or --in-place to overwrite the input)")
        }
    };
    if !args.in_place && job::same_file(input, &output) {
        bail!(
            "{}: output is the input file; use --in-place to overwrite it",
            output.display()
        );
    }
    Ok(output)
}

/// `--print-after NAME` must name a pass or step of this run.
fn check_print_after(args: &OptimizeArgs, optimizer: &Optimizer) -> anyhow::Result<()> {
    let Some(p) = &args.print_after else {
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

/// `--list-passes`: a line per pass.
fn list_passes() -> u8 {
    for p in all_passes() {
        println!("{:<20} {}", p.name(), p.description());
    }
    let off = whittle_passes::fuse::opt_in_rules();
    let off = if off.is_empty() {
        "none".into()
    } else {
        off.join(", ")
    };
    println!("fusions off by default (--enable rule:NAME): {off}");
    0
}

/// The one input of a single-model run.
fn single_input(args: &OptimizeArgs) -> anyhow::Result<std::path::PathBuf> {
    match &args.models[..] {
        [one] => Ok(one.clone()),
        [] => bail!("no input model given"),
        _ => bail!("several inputs: give -o a folder"),
    }
}
