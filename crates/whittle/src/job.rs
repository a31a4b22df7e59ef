//! One model through the one driver: source → settings (the config looked up in one
//! place, resolved once) → read → execute → save (external data named after the output,
//! nothing written over but the output's own files) → what was done. The CLI's single
//! and batch runs, Python, [`Optimizer::optimize_file`] and [`crate::build`] all run it;
//! they differ only in where the settings come from and what they print.

use crate::config::{Config, Settings};
use crate::optimizer::{Error, Optimizer};
use crate::report::Report;
use crate::session::RunOptions;
use crate::summary::Summary;
use std::path::{Path, PathBuf};
use std::time::Instant;
use whittle_ir::Model;
use whittle_onnx::{ExportOptions, InputFiles, OnnxError, SaveReport};

/// Where a model comes from.
pub enum Source {
    /// A file (external data beside it is mapped, not copied).
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
    pub fn config_path(&self) -> PathBuf {
        match self {
            Source::File(p) => p.clone(),
            Source::Bytes { label, .. } => PathBuf::from(label),
        }
    }

    fn read(&self) -> Result<(Model, Option<InputFiles>), Error> {
        Ok(match self {
            Source::File(p) => {
                let model = whittle_onnx::read_model(p)?;
                let files = InputFiles::of(&model, p);
                (model, Some(files))
            }
            Source::Bytes { bytes, label } => {
                let model = whittle_onnx::read_model_bytes(bytes.clone(), Path::new(label), None)?;
                (model, None)
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

/// Which settings file applies to a model.
#[derive(Clone, Debug, Default)]
pub enum ConfigChoice {
    /// `whittle.toml` beside a model file, if there is one (none for models in memory).
    #[default]
    Beside,
    /// This file.
    File(PathBuf),
    /// The build step's: `whittle.toml` beside the model, else
    /// `[package.metadata.whittle]` in this Cargo.toml.
    Project { manifest: Option<PathBuf> },
    /// None.
    Off,
}

/// The config that applies to `model` under `choice` (`on_disk`: the model is a file).
pub fn config_for(
    choice: &ConfigChoice,
    model: &Path,
    on_disk: bool,
) -> Result<Option<Config>, Error> {
    match choice {
        ConfigChoice::Off => Ok(None),
        ConfigChoice::File(path) => Config::load(path).map(Some),
        ConfigChoice::Beside if on_disk => Config::beside(model),
        ConfigChoice::Beside => Ok(None),
        ConfigChoice::Project { manifest } => match Config::beside(model)? {
            Some(c) => Ok(Some(c)),
            None => match manifest {
                Some(m) if m.is_file() => Config::from_cargo_manifest(m),
                _ => Ok(None),
            },
        },
    }
}

/// The plan for one model: the optimizer, the settings it was made from (None when the
/// caller built the optimizer itself), and the config that was read.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub optimizer: Optimizer,
    pub settings: Option<Settings>,
    pub config: Option<Config>,
}

impl Resolved {
    /// A plan of an optimizer built by the caller.
    pub fn given(optimizer: Optimizer) -> Resolved {
        Resolved {
            optimizer,
            settings: None,
            config: None,
        }
    }
}

/// The plan for `model`: its config's settings (top level, then matching sections) with
/// `flags` over them. Errors name the model and the config file.
pub fn resolve(
    flags: &Settings,
    choice: &ConfigChoice,
    model: &Path,
    on_disk: bool,
) -> Result<Resolved, Error> {
    let config = config_for(choice, model, on_disk)?;
    let base = config
        .as_ref()
        .map(|c| c.settings_for(model))
        .unwrap_or_default();
    let settings = base.overlay(flags);
    let optimizer = Optimizer::from_settings(&settings).map_err(|e| match e {
        Error::Config(m) => Error::Config(match &config {
            Some(c) => format!(
                "settings for {} (from {}): {m}",
                model.display(),
                c.path.display()
            ),
            None => format!("settings for {}: {m}", model.display()),
        }),
        other => other,
    })?;
    Ok(Resolved {
        optimizer,
        settings: Some(settings),
        config,
    })
}

/// A model read from its source with its plan, ready to run: callers that need the model
/// first (to make verification inputs for it) look at it here.
pub struct Job {
    plan: Resolved,
    model: Model,
    input_files: Option<InputFiles>,
    label: String,
    in_bytes: u64,
    before: Summary,
    start: Instant,
    read_ms: f64,
}

impl Job {
    /// Reads `source` for `plan`.
    pub fn open(source: &Source, plan: Resolved) -> Result<Job, Error> {
        let start = Instant::now();
        let (model, input_files) = source.read()?;
        Ok(Job {
            before: Summary::of(&model),
            read_ms: start.elapsed().as_secs_f64() * 1e3,
            plan,
            model,
            input_files,
            label: source.label(),
            in_bytes: source.size(),
            start,
        })
    }

    /// The model as read.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs every phase of the plan ([`Optimizer::execute`]).
    pub fn run(mut self, run: RunOptions) -> Result<Outcome, Error> {
        let done = self.plan.optimizer.execute(&mut self.model, run)?;
        Ok(Outcome {
            after: Summary::of(&self.model),
            model: self.model,
            optimizer: self.plan.optimizer,
            settings: self.plan.settings,
            config: self.plan.config.map(|c| c.path),
            done,
            before: self.before,
            input: self.label,
            in_bytes: self.in_bytes,
            input_files: self.input_files,
            start: self.start,
            read_ms: self.read_ms,
        })
    }
}

/// A model the driver has optimized, with what it takes to save and report it.
pub struct Outcome {
    pub model: Model,
    pub optimizer: Optimizer,
    /// The settings the run resolved (the config's, then the caller's); None when the
    /// caller built the optimizer.
    pub settings: Option<Settings>,
    /// The config file the settings came from.
    pub config: Option<PathBuf>,
    /// What the driver did.
    pub done: Report,
    /// The model before and after.
    pub before: Summary,
    pub after: Summary,
    /// The source's name in messages.
    pub input: String,
    /// The source's size in bytes.
    pub in_bytes: u64,
    /// The files the model was read from (its file and external data), when it came
    /// from a file: a save never writes over them unless it replaces the input.
    input_files: Option<InputFiles>,
    start: Instant,
    /// How long reading took.
    pub read_ms: f64,
}

impl Outcome {
    /// Writes the model to `output` atomically, its external data (as the settings say,
    /// and always past protobuf's 2 GiB limit) in one file named after the output. No
    /// file but those two is written over, and the input's files only when `output` is
    /// the input itself (`--in-place`).
    pub fn save(&self, output: &Path) -> Result<SaveReport, Error> {
        Ok(whittle_onnx::save_model(
            &self.model,
            output,
            &self.export_options(),
        )?)
    }

    /// How the model is written: the settings' external-data options and the files the
    /// save must not write over.
    pub fn export_options(&self) -> ExportOptions {
        self.optimizer.export_options(self.input_files.clone())
    }

    /// Like [`Outcome::save`], but refuses to write over the model's own input file (the
    /// CLI asks for `--in-place` for that; the Python API never does it).
    pub fn save_new(&self, output: &Path) -> Result<SaveReport, Error> {
        if let Some(input) = &self.input_files
            && whittle_onnx::targets::same_file(&input.model, output)
        {
            return Err(OnnxError::WouldOverwrite(format!(
                "{}: output is the input file; write elsewhere",
                output.display()
            ))
            .into());
        }
        self.save(output)
    }

    /// The model encoded in one buffer, external tensors embedded (fails past 2 GiB).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(whittle_onnx::encode_model_inline(&self.model)?)
    }

    /// Milliseconds since the source was opened.
    pub fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }
}
