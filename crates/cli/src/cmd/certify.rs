//! `whittle certify ORIGINAL OPTIMIZED [CERT]`: the certificate checker
//! (`whittle_certify`), with regions evaluated in the runtime `--runtime` names.

use crate::cli::{CertifyArgs, Format};
use crate::testinputs::input_sets;
use anyhow::Context;
use std::fmt::Write;
use whittle::certificate::file_sha256;
use whittle::certify_eval::{Feed, RegionEvaluator};
use whittle_certify::record::Certificate;
use whittle_certify::{Rejection, Report, Verdict};
use whittle_onnx::read_model;

pub fn run(args: CertifyArgs) -> anyhow::Result<u8> {
    let (out, ok) = render(&args)?;
    print!("{out}");
    Ok(if ok { 0 } else { 1 })
}

/// What `whittle certify` prints, and whether the certificate holds.
pub fn render(args: &CertifyArgs) -> anyhow::Result<(String, bool)> {
    let original = read_model(&args.original)?;
    let optimized = read_model(&args.optimized)?;
    let eval = match args.no_evaluate {
        true => None,
        false => {
            let rt = args.runtime.load()?;
            let (sets, _) = input_sets(&original, &args.inputs)?;
            let first = sets.into_iter().next().unwrap_or_default();
            let feed = match args.region_inputs.as_str() {
                "random" => Feed::Random,
                _ => Feed::Original,
            };
            Some(RegionEvaluator::new(&original, &optimized, rt, first, feed))
        }
    };
    let eval = eval.as_ref().map(|e| e as &dyn whittle_certify::Evaluator);
    let report = match &args.certificate {
        Some(path) => {
            let cert = read_certificate(path)?;
            match files_match(&cert, args)? {
                Some(rejection) => Report {
                    rejected: Some(rejection),
                    ..Report::default()
                },
                None => whittle_certify::certify(&original, &optimized, &cert, eval)?,
            }
        }
        None => whittle_certify::without_certificate(&original, &optimized, eval),
    };
    let ok = report.rejected.is_none();
    if let Some(path) = &args.html {
        let page = crate::html::certify_page(&args.original, &args.optimized, &report);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        _ => text(&report, args),
    };
    Ok((out, ok))
}

fn read_certificate(path: &std::path::Path) -> anyhow::Result<Certificate> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a whittle certificate", path.display()))
}

/// A rejection when the certificate was written for other files.
fn files_match(cert: &Certificate, args: &CertifyArgs) -> anyhow::Result<Option<Rejection>> {
    for (what, path, want) in [
        ("original", &args.original, &cert.original.sha256),
        ("optimized", &args.optimized, &cert.optimized.sha256),
    ] {
        let have = file_sha256(path).with_context(|| format!("reading {}", path.display()))?;
        if &have != want {
            return Ok(Some(Rejection {
                rewrite: 0,
                rule: String::new(),
                site: String::new(),
                why: format!(
                    "{} is not the {what} model the certificate was written for \
                     (sha256 {} there, {} here)",
                    path.display(),
                    &want[..12.min(want.len())],
                    &have[..12]
                ),
            }));
        }
    }
    Ok(None)
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::ProvedExact { lemma } => format!("proved exact ({lemma})"),
        Verdict::ProvedWithinBound { lemma } => format!("proved within an fp32 bound ({lemma})"),
        Verdict::CheckedByEvaluation {
            runtime, max_abs, ..
        } => format!("checked by evaluation in {runtime} (max abs {max_abs:.1e})"),
        Verdict::Lossy { measured } => format!("lossy, outside proof: {measured}"),
        Verdict::NotCertified { reason } => format!("not certified: {reason}"),
    }
}

/// The human report: the replay's result, one line per rewrite, the counts.
fn text(report: &Report, args: &CertifyArgs) -> String {
    let mut out = String::new();
    if let Some(r) = &report.rejected {
        let at = match r.rewrite {
            0 => String::new(),
            k => format!(" at rewrite {k} ({} at {})", r.rule, r.site),
        };
        let _ = writeln!(out, "REJECTED{at}: {}", r.why);
        return out;
    }
    let _ = match (&args.certificate, report.replayed) {
        (Some(_), true) => writeln!(
            out,
            "replay: {} is exactly {} with the {} logged rewrites",
            args.optimized.display(),
            args.original.display(),
            report.verdicts.len()
        ),
        (Some(_), false) => writeln!(
            out,
            "replay: the lossless rewrites replay on {}; a lossy step follows them \
             (outside proof)",
            args.original.display()
        ),
        (None, _) => writeln!(
            out,
            "no certificate: structural comparison of the two models"
        ),
    };
    for (k, rule, site, v) in &report.verdicts {
        let _ = writeln!(out, "{k:>5}  {rule:<26} {site:<40} {}", verdict_text(v));
    }
    let [proved, bound, checked, lossy, not] = report.counts();
    let _ = writeln!(
        out,
        "summary: {proved} proved exact, {bound} proved within an fp32 bound, {checked} \
         checked by evaluation, {lossy} lossy, {not} not certified"
    );
    out
}
