//! `whittle optimize`.

use crate::cli::OptimizeArgs;
use crate::job::{self, Request, Source};
use crate::settings::{config_choice, from_flags, optimizer_for, verify_request};
use crate::summary::Summary;
use anyhow::{Context, bail};
use whittle::Optimizer;
use whittle_ir::text::{PrintOptions, print_model};
use whittle_onnx::Saved;
use whittle_passes::pipeline::all_passes;

pub fn run(a: OptimizeArgs) -> anyhow::Result<u8> {
    if a.check {
        // --check distinguishes "would change" (1) from failure (2).
        return Ok(check(&a).unwrap_or_else(|e| {
            eprintln!("error: {}", crate::one_line(&e));
            2
        }));
    }
    optimize(a)
}

/// `--check`: optimize in memory and compare with what OUT holds.
fn check(a: &OptimizeArgs) -> anyhow::Result<u8> {
    let input = single_input(a)?;
    let output = a.output.clone().context("--check needs -o OUT")?;
    let outcome = job::run(&Source::File(input), &request(a)?, None)?;
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
        Summary::table_with(&current, &Summary::of(model), ["now", "new"])
    );
    Ok(1)
}

/// What the flags ask of the driver (the settings, their config, verification).
pub fn request(a: &OptimizeArgs) -> anyhow::Result<Request> {
    Ok(Request {
        flags: from_flags(a)?,
        config: config_choice(a),
        verify: verify_request(a),
        rewrite_limit: a.bisect_limit,
    })
}

fn optimize(a: OptimizeArgs) -> anyhow::Result<u8> {
    if a.list_passes {
        return Ok(list_passes());
    }
    let many = |p: &std::path::Path| p.is_dir() || crate::cmd::batch::is_glob(p);
    if a.models.len() > 1 || a.models.first().is_some_and(|p| many(p)) {
        return crate::cmd::batch::run(&a);
    }
    let input = single_input(&a)?;
    let output = output_path(&a, &input)?;
    let optimizer = optimizer_for(&a, &input)?.optimizer;
    check_print_after(&a, &optimizer)?;
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
    let req = request(&a)?;
    let outcome = job::run(&Source::File(input.clone()), &req, Some(&mut observe))?;
    spin.finish_and_clear();
    if let (Some(pass), Some(text)) = (&a.print_after, &listing) {
        eprint!("# after {pass}\n{text}");
    }
    let saved = outcome.save(&output)?;
    let shown = output.display().to_string();
    if !crate::progress::quiet() {
        print!("{}", outcome.text(&shown, &saved));
    }
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&outcome.report(&shown, saved.model_bytes))?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(0)
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
    if !a.in_place && job::same_file(input, &output) {
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
fn single_input(a: &OptimizeArgs) -> anyhow::Result<std::path::PathBuf> {
    match &a.models[..] {
        [one] => Ok(one.clone()),
        [] => bail!("no input model given"),
        _ => bail!("several inputs: give -o a folder"),
    }
}
