//! `whittle bench MODEL [MODEL2]`: latency (median, p90) in tract or ONNX Runtime
//! (`--runtime`), load time, peak memory.

use crate::cli::{BenchArgs, InputArgs};
use crate::testinputs::input_sets;
use std::fmt::Write;
use std::time::Instant;
use whittle_eval::Runner;
use whittle_onnx::read_model;

/// Figures for one model.
struct Figures {
    load_ms: f64,
    median_ms: f64,
    p90_ms: f64,
    peak_mb: Option<f64>,
}

/// Resets the kernel's peak-RSS counter of this process (Linux), so each model's peak
/// is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak RSS of this process since the last reset, in MB (Linux).
fn peak_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn measure(
    rt: &whittle_eval::Runtime,
    path: &std::path::Path,
    args: &BenchArgs,
) -> anyhow::Result<Figures> {
    reset_peak();
    let model = read_model(path)?;
    let inputs = InputArgs {
        input_shape: args.input_shape.clone(),
        input_range: args.input_range.clone(),
        inputs: None,
        runs: 1,
        seed: 0,
    };
    let (sets, _) = input_sets(&model, &inputs)?;
    let set = sets.into_iter().next().unwrap_or_default();
    let t0 = Instant::now();
    let runner = Runner::new(rt, &model, &path.display().to_string(), &set)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(model);
    for _ in 0..args.warmup {
        runner.run(&set)?;
    }
    let mut times: Vec<f64> = Vec::with_capacity(args.timed);
    for _ in 0..args.timed.max(1) {
        let t = Instant::now();
        runner.run(&set)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(Figures {
        load_ms,
        median_ms: at(0.5),
        p90_ms: at(0.9),
        peak_mb: peak_mb(),
    })
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let mut out = String::new();
    for rt in args.runtime.load_all()? {
        out += &block(&rt, &args)?;
    }
    print!("{out}");
    Ok(0)
}

/// The table of every model in `rt`, with the ratio of two.
fn block(rt: &whittle_eval::Runtime, args: &BenchArgs) -> anyhow::Result<String> {
    let figures: Vec<Figures> = args
        .models
        .iter()
        .map(|p| measure(rt, p, args))
        .collect::<anyhow::Result<_>>()?;
    let mut out = format!("runtime: {}\n", rt.describe());
    out += &format!(
        "{:<40} {:>10} {:>10} {:>10} {:>10}\n",
        "model", "load ms", "median ms", "p90 ms", "peak MB"
    );
    for (p, f) in args.models.iter().zip(&figures) {
        let peak = f.peak_mb.map_or_else(|| "?".into(), |m| format!("{m:.0}"));
        let _ = writeln!(
            out,
            "{:<40} {:>10.1} {:>10.3} {:>10.3} {:>10}",
            p.display(),
            f.load_ms,
            f.median_ms,
            f.p90_ms,
            peak
        );
    }
    if let [x, y] = &figures[..] {
        let _ = writeln!(
            out,
            "ratio (second / first): median {:.2}x, p90 {:.2}x, load {:.2}x",
            y.median_ms / x.median_ms,
            y.p90_ms / x.p90_ms,
            y.load_ms / x.load_ms
        );
    }
    let _ = writeln!(
        out,
        "{} timed runs after {} warm-up runs ({})",
        args.timed.max(1),
        args.warmup,
        rt.name()
    );
    Ok(out)
}
