//! The report of one optimized model for people, as `whittle optimize` prints it.

use crate::job::Outcome;
use whittle::{LossyCheck, Verification};
use whittle_onnx::SaveReport;

/// The before/after table, what each pass did, the file sizes, the lossy notes and what
/// verification found.
pub fn render(o: &Outcome, output: &str, saved: &SaveReport) -> String {
    let mut out = format!("{} -> {output}\n", o.input());
    if let Some(c) = &o.config {
        out += &format!("settings from {}\n", c.display());
    }
    out += &format!("{}\n", crate::summary::table(&o.before, &o.after));
    for s in &o.done.passes {
        out += &format!(
            "pass {:<16} {:>6} rewrites {:>8.2} ms\n",
            s.name,
            s.rewrites,
            s.time.as_secs_f64() * 1e3
        );
    }
    let (in_bytes, read_ms) = o.sizes();
    out += &format!(
        "file: {in_bytes} -> {} bytes{}; read {read_ms:.1} ms, total {:.1} ms\n",
        saved.model_bytes,
        external_note(saved),
        o.elapsed_ms()
    );
    for (node, note) in &o.done.notes {
        out += &format!("{note} at '{node}'\n");
    }
    if let Some(v) = &o.done.verification {
        out += &verify_summary(v, o.done.lossy.as_ref(), &o.verified_on);
    }
    if let Some(rt) = &o.done.runtime {
        out += &format!("runtime: {rt}\n");
    }
    out
}

/// What `--verify` checked and did.
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

fn external_note(r: &SaveReport) -> String {
    if r.external_files.is_empty() {
        return String::new();
    }
    let total: u64 = r.external_files.iter().map(|f| f.1).sum();
    let names: Vec<&str> = r.external_files.iter().map(|f| f.0.as_str()).collect();
    format!(" + {total} bytes external in {}", names.join(", "))
}
