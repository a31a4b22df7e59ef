//! One model through the one driver, as the CLI's single runs, its batches and the
//! Python API all do it: settings (flags over config), read, optimize (verified when
//! asked), then save or encode, and report.

use crate::cli::{InputArgs, ToleranceArgs};
use crate::report::{self, Report, Side};
use crate::summary::Summary;
use crate::testinputs;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Instant;
use whittle::{Config, Optimizer, RunOptions, Settings, Verify};
use whittle_ir::Model;
use whittle_onnx::{
    ExportOptions, InputFiles, SaveReport, read_model, read_model_bytes, save_model,
};

/// Where a model comes from.
pub enum Source {
    /// A file (external data beside it is read lazily).
    File(PathBuf),
    /// An encoded model held in memory (no external data), named `label` in messages.
    /// Tensors of the model read from it share its buffer.
    Bytes { bytes: bytes::Bytes, label: String },
}

impl Source {
    /// The name messages and reports use.
    pub fn label(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Bytes { label, .. } => label.clone(),
        }
    }

    /// The path `[model."PATTERN"]` sections of a config match against.
    fn config_path(&self) -> PathBuf {
        match self {
            Source::File(p) => p.clone(),
            Source::Bytes { label, .. } => PathBuf::from(label),
        }
    }

    fn read(&self) -> anyhow::Result<Model> {
        Ok(match self {
            Source::File(p) => read_model(p)?,
            Source::Bytes { bytes, label } => {
                read_model_bytes(bytes.clone(), Path::new(label), None)?
            }
        })
    }

    fn size(&self) -> u64 {
        match self {
            Source::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Bytes { bytes, .. } => bytes.len() as u64,
        }
    }
}

/// Which settings file applies.
#[derive(Clone, Debug, Default)]
pub enum ConfigChoice {
    /// `whittle.toml` beside a model file, if there is one (none for models in memory).
    #[default]
    Beside,
    /// This file.
    File(PathBuf),
    /// None.
    Off,
}

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
}

/// The config that applies to `model` under `choice`.
pub fn config_for(
    choice: &ConfigChoice,
    model: &Path,
    on_disk: bool,
) -> anyhow::Result<Option<Config>> {
    Ok(match choice {
        ConfigChoice::Off => None,
        ConfigChoice::File(path) => Some(Config::load(path)?),
        ConfigChoice::Beside if on_disk => Config::beside(model)?,
        ConfigChoice::Beside => None,
    })
}

/// The settings that apply to `model`: its config's with `flags` over them, the
/// optimizer they make, and the config that was read (if any).
pub struct Resolved {
    pub optimizer: Optimizer,
    pub settings: Settings,
    pub config: Option<Config>,
}

/// The settings, and the optimizer, for `model` (see [`Resolved`]).
pub fn optimizer_for(
    flags: &Settings,
    choice: &ConfigChoice,
    model: &Path,
    on_disk: bool,
) -> anyhow::Result<Resolved> {
    let config = config_for(choice, model, on_disk)?;
    let base = config
        .as_ref()
        .map(|c| c.settings_for(model))
        .unwrap_or_default();
    let settings = base.overlay(flags);
    let optimizer = Optimizer::from_settings(&settings).with_context(|| match &config {
        Some(c) => format!(
            "settings for {} (from {})",
            model.display(),
            c.path.display()
        ),
        None => format!("settings for {}", model.display()),
    })?;
    Ok(Resolved {
        optimizer,
        settings,
        config,
    })
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

/// A model the driver has optimized, with what it takes to save and report it.
pub struct Outcome {
    pub model: Model,
    pub optimizer: Optimizer,
    /// The settings the run resolved (the config's, then the caller's).
    pub settings: Settings,
    /// The config file the settings came from.
    pub config: Option<PathBuf>,
    pub done: whittle::Report,
    /// The model before and after.
    pub before: Summary,
    pub after: Summary,
    /// What `--verify` ran on (empty without it).
    pub verified_on: String,
    input: String,
    in_bytes: u64,
    /// The files the model was read from (its file and external data), when it came
    /// from a file: a save never writes over them unless it replaces the input.
    input_files: Option<InputFiles>,
    start: Instant,
    read_ms: f64,
}

/// Runs `source` through the driver. `observer` sees the model after each pass and step.
pub fn run(
    source: &Source,
    req: &Request,
    observer: Option<whittle::Observer<'_>>,
) -> anyhow::Result<Outcome> {
    let on_disk = matches!(source, Source::File(_));
    let Resolved {
        optimizer,
        settings,
        config,
    } = optimizer_for(&req.flags, &req.config, &source.config_path(), on_disk)?;
    let start = Instant::now();
    let mut model = source.read()?;
    let input_files = match source {
        Source::File(p) => Some(InputFiles::of(&model, p)),
        Source::Bytes { .. } => None,
    };
    let before = Summary::of(&model);
    let read_ms = start.elapsed().as_secs_f64() * 1e3;
    let verify = verify_inputs(req.verify.as_ref(), &model)?;
    let run = RunOptions {
        verify: verify.as_ref().map(|v| &v.0),
        rewrite_limit: req.rewrite_limit,
        observer: match observer {
            Some(o) => Some(o),
            None => None,
        },
    };
    let label = source.label();
    let done = optimizer
        .execute(&mut model, run)
        .with_context(|| match verify {
            Some(_) => format!("optimizing {label} with --verify"),
            None => format!("optimizing {label}"),
        })?;
    Ok(Outcome {
        after: Summary::of(&model),
        model,
        optimizer,
        settings,
        config: config.map(|c| c.path),
        done,
        before,
        verified_on: verify.map(|v| v.1).unwrap_or_default(),
        input: label,
        in_bytes: source.size(),
        input_files,
        start,
        read_ms,
    })
}

impl Outcome {
    /// Writes the model to `output` atomically, its external data (as the settings say,
    /// and always past protobuf's 2 GiB limit) in one file named after the output. No
    /// file but those two is written over, and the input's files only when `output` is
    /// the input itself (`--in-place`).
    pub fn save(&self, output: &Path) -> anyhow::Result<SaveReport> {
        save_model(&self.model, output, &self.export_options())
            .with_context(|| format!("writing {}", output.display()))
    }

    /// How the model is written: the settings' external-data options and the files the
    /// save must not write over.
    pub fn export_options(&self) -> ExportOptions {
        self.optimizer.export_options(self.input_files.clone())
    }

    /// Like [`Outcome::save`], but refuses to write over the model's own input file (the
    /// CLI asks for `--in-place` for that; the Python API never does it).
    pub fn save_new(&self, output: &Path) -> anyhow::Result<SaveReport> {
        if let Some(input) = &self.input_files {
            anyhow::ensure!(
                !same_file(&input.model, output),
                "{}: output is the input file; write elsewhere",
                output.display()
            );
        }
        self.save(output)
    }

    /// The model encoded in one buffer, external tensors embedded (fails past 2 GiB).
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(whittle_onnx::encode_model_inline(&self.model)?)
    }

    /// The `--report` JSON, for a model written to `output` in `out_bytes` bytes.
    pub fn report(&self, output: &str, out_bytes: u64) -> Report {
        let done = &self.done;
        Report {
            schema_version: report::SCHEMA_VERSION,
            input: self.input.clone(),
            output: output.to_string(),
            settings: self.settings.clone(),
            before: Side::new(&self.before, self.in_bytes),
            after: Side::new(&self.after, out_bytes),
            passes: report::passes(&done.passes),
            rewrites: report::rewrites(&done.rewrites),
            notes: report::notes(&done.notes),
            verify: done
                .verification
                .as_ref()
                .map(|v| report::verify_json(v, done.lossy.as_ref(), &self.verified_on)),
            read_ms: self.read_ms,
            total_ms: self.start.elapsed().as_secs_f64() * 1e3,
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

    pub(crate) fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }
}

pub use whittle_onnx::targets::same_file;
