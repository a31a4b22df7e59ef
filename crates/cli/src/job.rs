//! One model through the one driver as the CLI's single runs, its batches and the
//! Python API do it: the library's job ([`whittle::job`]: settings, read, execute, save)
//! with the CLI's verification inputs, and the reports it prints.

use crate::cli::{InputArgs, ToleranceArgs};
use crate::report::{self, Report, Side};
use crate::testinputs;
use anyhow::Context;
use whittle::job::Job;
use whittle::{RunOptions, Settings, Verify};
use whittle_ir::Model;
use whittle_onnx::SaveReport;

pub use whittle::job::{ConfigChoice, Resolved, Source};
pub use whittle_onnx::targets::same_file;

/// `--verify`: the inputs, the tolerance of the lossless phase, and whether a missed
/// budget fails the run.
#[derive(Clone, Debug)]
pub struct VerifyRequest {
    pub strict: bool,
    pub inputs: InputArgs,
    pub tolerance: ToleranceArgs,
}

/// How to run one model.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// What the caller said (flags, Python keywords); keys it leaves unset come from the
    /// config, then the defaults.
    pub flags: Settings,
    pub config: ConfigChoice,
    pub verify: Option<VerifyRequest>,
    /// `--bisect-limit`.
    pub rewrite_limit: Option<usize>,
    /// Record each rewrite's region (`--certificate`).
    pub record_edits: bool,
}

/// The verification inputs for `model` and a sentence saying what they are.
pub fn verify_inputs(
    req: Option<&VerifyRequest>,
    model: &Model,
) -> anyhow::Result<Option<(Verify, String)>> {
    let Some(r) = req else {
        return Ok(None);
    };
    let (sets, what) = testinputs::input_sets(model, &r.inputs)?;
    let verify = Verify {
        sets,
        tolerance: testinputs::tolerance(&r.tolerance),
        strict: r.strict,
    };
    Ok(Some((verify, what)))
}

/// The library's outcome of a run ([`whittle::job::Outcome`]: the model, what was done,
/// saving), with what `--verify` ran on.
pub struct Outcome {
    pub run: whittle::job::Outcome,
    /// What `--verify` ran on (empty without it).
    pub verified_on: String,
}

impl std::ops::Deref for Outcome {
    type Target = whittle::job::Outcome;

    fn deref(&self) -> &Self::Target {
        &self.run
    }
}

/// Runs `source` through the driver with the settings `req` resolves to. `observer` sees
/// the model after each pass and step.
pub fn run(
    source: &Source,
    req: &Request,
    observer: Option<whittle::Observer<'_>>,
) -> anyhow::Result<Outcome> {
    let on_disk = matches!(source, Source::File(_));
    let plan = whittle::job::resolve(&req.flags, &req.config, &source.config_path(), on_disk)?;
    run_planned(source, plan, req, observer)
}

/// [`run`] with the settings already resolved (`plan`), so a caller that needed them
/// first (to check `--print-after`, or a batch's outputs) resolves them once.
pub fn run_planned(
    source: &Source,
    plan: Resolved,
    req: &Request,
    observer: Option<whittle::Observer<'_>>,
) -> anyhow::Result<Outcome> {
    let job = Job::open(source, plan)?;
    let verify = verify_inputs(req.verify.as_ref(), job.model())?;
    let verifying = verify.is_some();
    let run = RunOptions {
        verify: verify.as_ref().map(|v| &v.0),
        rewrite_limit: req.rewrite_limit,
        record_edits: req.record_edits,
        // A reborrow: the observer need only live as long as this run.
        observer: match observer {
            Some(o) => Some(o),
            None => None,
        },
    };
    let label = source.label();
    let done = job.run(run).with_context(|| match verifying {
        true => format!("optimizing {label} with --verify"),
        false => format!("optimizing {label}"),
    })?;
    Ok(Outcome {
        run: done,
        verified_on: verify.map(|v| v.1).unwrap_or_default(),
    })
}

impl Outcome {
    /// The `--report` JSON, for a model written to `output` in `out_bytes` bytes.
    pub fn report(&self, output: &str, out_bytes: u64) -> Report {
        let done = &self.done;
        Report {
            schema_version: report::SCHEMA_VERSION,
            input: self.input.clone(),
            output: output.to_string(),
            settings: self.settings.clone().unwrap_or_default(),
            before: Side::new(&self.before, self.in_bytes),
            after: Side::new(&self.after, out_bytes),
            passes: report::passes(&done.passes),
            rewrites: report::rewrites(&done.rewrites),
            notes: report::notes(&done.notes),
            verify: done.verification.as_ref().map(|v| {
                let mut j = report::verify_json(v, done.lossy.as_ref(), &self.verified_on);
                j["runtime"] = serde_json::json!(done.runtime);
                j
            }),
            read_ms: self.read_ms,
            total_ms: self.elapsed_ms(),
        }
    }

    /// The report for people: the before/after table, what each pass did, the file
    /// sizes, the lossy notes and what verification found.
    pub fn text(&self, output: &str, saved: &SaveReport) -> String {
        crate::run_text::render(self, output, saved)
    }

    pub(crate) fn input(&self) -> &str {
        &self.input
    }

    pub(crate) fn sizes(&self) -> (u64, f64) {
        (self.in_bytes, self.read_ms)
    }
}
