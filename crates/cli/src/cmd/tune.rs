//! `whittle tune`: runs the library's search ([`whittle::tune`]), writes the chosen
//! plan's model, and prints the plans, the Pareto front and the settings that reproduce
//! the choice; `--html` also writes the report.

use crate::cli::TuneArgs;
use anyhow::Context;
use std::fmt::Write as _;
use whittle::Settings;
use whittle::tune::{Cache, Measured, TuneOptions, Tuned};

pub fn run(args: TuneArgs) -> anyhow::Result<u8> {
    let (tuned, base, written) = search(&args)?;
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&json(&tuned, &base))?);
    } else if !crate::progress::quiet() {
        print!("{}", text(&tuned, &base, &args.output, written));
    }
    Ok(if tuned.chosen.is_some() { 0 } else { 1 })
}

/// `tune` as the Python API runs it: the report as JSON (the chosen plan written, and the
/// HTML report when asked, as on the command line).
pub fn render_json(args: &TuneArgs) -> anyhow::Result<String> {
    let (tuned, base, _) = search(args)?;
    Ok(serde_json::to_string_pretty(&json(&tuned, &base))?)
}

/// Runs the search, writes the chosen model (and `--html`); returns what was found, the
/// user's settings and the bytes written.
fn search(args: &TuneArgs) -> anyhow::Result<(Tuned, Settings, Option<u64>)> {
    let opts = options(args)?;
    if crate::job::same_file(&args.model, &args.output) {
        anyhow::bail!(
            "{}: output is the input file; write elsewhere",
            args.output.display()
        );
    }
    let spin = crate::progress::spinner(&format!("tune {}", args.model.display()));
    let tuned = whittle::tune::tune(&args.model, &opts, &mut |what: &str| {
        spin.set_message(format!("measuring {what}"));
    })?;
    spin.finish_and_clear();
    let written = match &tuned.outcome {
        Some(o) => Some(o.save_new(&args.output)?.model_bytes),
        None => None,
    };
    if let Some(path) = &args.html {
        let page = crate::html::tune_page(&args.model, &tuned, &opts.base);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((tuned, opts.base, written))
}

/// The search's options from the flags.
fn options(args: &TuneArgs) -> anyhow::Result<TuneOptions> {
    let mut base = args.settings.to_settings();
    let budget = base
        .budget
        .take()
        .context("tune needs --budget cosine=X or top1=X: the accuracy it may spend")?;
    let shapes = crate::shapes::parse_all(&args.input_shape)?;
    if !shapes.is_empty() {
        base.input_shapes = Some(
            shapes
                .into_iter()
                .map(|(name, dims)| {
                    (
                        name,
                        dims.iter().map(crate::settings::dim_setting).collect(),
                    )
                })
                .collect(),
        );
    }
    let cache = match (&args.cache, args.no_cache) {
        (_, true) => None,
        (Some(dir), false) => Some(dir.clone()),
        (None, false) => Cache::default_dir(),
    };
    Ok(TuneOptions {
        base,
        budget,
        objective: args.objective.parse().map_err(anyhow::Error::msg)?,
        time_limit: args.time_limit,
        cache,
    })
}

/// The report on stdout: the plans, the front, the choice and its settings.
fn text(t: &Tuned, base: &Settings, output: &std::path::Path, written: Option<u64>) -> String {
    let mut s = format!(
        "tune: budget {} judged on {}; objective {}; runtime {}\n\n",
        t.budget,
        t.data,
        objective_name(t),
        t.runtime
    );
    let _ = writeln!(s, "{}", table(t));
    for (plan, why) in &t.skipped {
        let _ = writeln!(s, "not tried: {plan}: {why}");
    }
    if let Some(why) = &t.stopped {
        let _ = writeln!(s, "stopped early: {why}");
    }
    let cached = t.measured.iter().filter(|m| m.cached).count();
    let _ = writeln!(
        s,
        "{:.1} s in all; {cached} plans read from the cache",
        t.seconds
    );
    match (t.chosen, t.toml(base)) {
        (Some(c), Some(toml)) => {
            let m = &t.measured[c];
            let bytes = written.map(|b| format!(", {b} bytes")).unwrap_or_default();
            let _ = writeln!(s, "\nchosen: {} -> {}{bytes}", m.plan, output.display());
            let _ = write!(
                s,
                "\nwhittle.toml that reproduces it with `whittle optimize`:\n\n{toml}"
            );
        }
        _ => {
            let _ = writeln!(s, "\nno plan met the budget {}: nothing written", t.budget);
        }
    }
    s
}

fn objective_name(t: &Tuned) -> &'static str {
    match t.objective {
        whittle::tune::Objective::Latency => "latency",
        whittle::tune::Objective::Size => "size",
    }
}

/// One row per measurement.
pub fn table(t: &Tuned) -> String {
    let reference = &t.measured[0];
    let mut s = String::from(
        "| # | plan | latency | speed | size | held-out cosine (95% low) | top-1 | budget | front |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, m) in t.measured.iter().enumerate() {
        let mark = if Some(i) == t.chosen { " (chosen)" } else { "" };
        let cached = if m.cached { " [cached]" } else { "" };
        if let Some(e) = &m.error {
            let _ = writeln!(
                s,
                "| {i} | {}{cached} | failed: {e} | | | | | no | |",
                m.plan
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {i} | {}{mark}{cached} | {:.3} ms | {:.2}x | {:.2} MB ({:.2}x) | {:.5} ({:.5}) | {:.2}% | {} | {} |",
            m.plan,
            m.latency_ms,
            reference.latency_ms / m.latency_ms.max(1e-9),
            m.bytes as f64 / 1e6,
            m.bytes as f64 / (reference.bytes.max(1) as f64),
            m.cosine,
            m.cosine_low,
            m.top1 * 100.0,
            if m.held { "met" } else { "missed" },
            if t.front.contains(&i) { "yes" } else { "" },
        );
    }
    s
}

/// The report as JSON (what `whittle.tune` returns in Python).
fn json(t: &Tuned, base: &Settings) -> serde_json::Value {
    let rows: Vec<&Measured> = t.measured.iter().collect();
    serde_json::json!({
        "budget": t.budget,
        "objective": objective_name(t),
        "runtime": t.runtime,
        "data": t.data,
        "seconds": t.seconds,
        "stopped": t.stopped,
        "chosen": t.chosen,
        "front": t.front,
        "measured": rows,
        "cached": t.measured.iter().map(|m| m.cached).collect::<Vec<_>>(),
        "skipped": t.skipped,
        "toml": t.toml(base),
    })
}
