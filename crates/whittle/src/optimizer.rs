//! The optimizer builder.

use crate::config::Settings;
use crate::modes::Quantize;
use crate::report::Report;
use crate::verified::VerifyError;
use std::path::{Path, PathBuf};
use thiserror::Error;
use whittle_compress::budget::StepOptions;
use whittle_compress::decompose::{self, ErrorBudget, Kind};
use whittle_compress::prune;
use whittle_compress::quant::QuantError;
use whittle_eval::{Runtime, RuntimeChoice};
use whittle_ir::evaluate::Evaluator;
use whittle_ir::{Dim, Model};
use whittle_onnx::{ExportOptions, InputFiles, OnnxError};
use whittle_passes::{DEFAULT_FOLD_LIMIT, Level, PassCx, PassError, PassSettings, Pipeline};

/// The share of calibration samples held out to judge budgets on, by default.
pub const DEFAULT_HOLDOUT: f64 = 0.5;

/// Why an optimization failed.
#[derive(Debug, Error)]
pub enum Error {
    /// Reading, decoding or writing a model.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// A pass failed (the model is left as it was before it).
    #[error(transparent)]
    Pass(#[from] PassError),
    /// The settings name something that does not exist (a pass, an input).
    #[error("{0}")]
    Config(String),
    /// Decomposition failed (the model is left as the lossless passes made it).
    #[error(transparent)]
    Decompose(#[from] decompose::DecomposeError),
    /// Pruning failed (the model is left as the lossless passes made it).
    #[error(transparent)]
    Prune(#[from] prune::PruneError),
    /// Calibrated quantization failed (the model is left as the lossless passes made it).
    #[error(transparent)]
    Quantize(#[from] QuantError),
    /// Calibration data could not be read or does not fit the model.
    #[error("calibration data {path}: {reason}")]
    Calibration { path: PathBuf, reason: String },
    /// Verification of the lossless phase failed (strict mismatch, too many roll-backs,
    /// a model tract cannot run).
    #[error(transparent)]
    LosslessCheck(#[from] VerifyError),
    /// The lossy steps miss their budget on the verification inputs (strict), or could
    /// not be judged.
    #[error("{0}")]
    BudgetMissed(String),
    /// The runtime asked for cannot be used (ONNX Runtime not found, or too old).
    #[error("{0}")]
    Runtime(String),
}

/// Settings for one optimization: level, passes, input shapes, fold limit. Build it with
/// the methods, then call [`Optimizer::optimize_file`], [`Optimizer::optimize_bytes`] or
/// [`Optimizer::optimize_model`].
#[derive(Clone, Debug)]
pub struct Optimizer {
    pub(crate) level: Level,
    pub(crate) passes: Option<Vec<String>>,
    pub(crate) disable: Vec<String>,
    pub(crate) input_shapes: Vec<(String, Vec<Dim>)>,
    pub(crate) fold_limit: u64,
    pub(crate) exclude: Vec<(String, String)>,
    pub(crate) exclude_ops: Vec<String>,
    /// Off-by-default rules asked for (`--enable rule:NAME`).
    pub(crate) enable: Vec<String>,
    pub(crate) external_data_threshold: Option<u64>,
    /// The output's external data file name (None: `<output file name>.data`).
    pub(crate) external_data_name: Option<String>,
    pub(crate) quantize: Option<Quantize>,
    pub(crate) decompose: Option<decompose::Options>,
    pub(crate) prune: Option<prune::Options>,
    pub(crate) calibrate: Option<PathBuf>,
    /// Quantization held to this whole-model budget (layers kept float until it holds).
    pub(crate) quant_budget: Option<ErrorBudget>,
    /// Raise the default-domain opset to this version first.
    pub(crate) opset: Option<i64>,
    /// The runtime asked for (`--runtime`), its library (`--ort-lib`) and threads.
    pub(crate) runtime: RuntimeChoice,
    pub(crate) ort_lib: Option<PathBuf>,
    pub(crate) threads: Option<usize>,
    /// Share of calibration samples held out to judge budgets on (`--holdout`).
    pub(crate) holdout: f64,
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::new()
    }
}

impl Optimizer {
    /// The default: `-O2` (clean-up, folding, fusion), 1 MiB fold limit.
    pub fn new() -> Optimizer {
        Optimizer {
            level: Level::O2,
            passes: None,
            disable: Vec::new(),
            input_shapes: Vec::new(),
            fold_limit: DEFAULT_FOLD_LIMIT,
            exclude: Vec::new(),
            exclude_ops: Vec::new(),
            enable: Vec::new(),
            external_data_threshold: None,
            external_data_name: None,
            quantize: None,
            decompose: None,
            prune: None,
            calibrate: None,
            quant_budget: None,
            opset: None,
            runtime: RuntimeChoice::Tract,
            ort_lib: None,
            threads: None,
            holdout: DEFAULT_HOLDOUT,
        }
    }

    /// Decompose layers after the lossless passes (before any quantization).
    pub fn decompose(mut self, opts: decompose::Options) -> Self {
        self.decompose = Some(opts);
        self
    }

    /// Prune channels after the lossless passes (before decomposition and quantization).
    pub fn prune(mut self, opts: prune::Options) -> Self {
        self.prune = Some(opts);
        self
    }

    /// Calibration data for decomposition: `.npy`, `.npz` or `test_data_set_N` folders.
    pub fn calibrate(mut self, path: &Path) -> Self {
        self.calibrate = Some(path.to_path_buf());
        self
    }

    /// The runtime that verifies, judges and calibrates (`--runtime`), with ONNX Runtime's
    /// library (None: searched for) and intra-op threads (None: its default).
    pub fn runtime(
        mut self,
        choice: RuntimeChoice,
        ort_lib: Option<&Path>,
        threads: Option<usize>,
    ) -> Self {
        self.runtime = choice;
        self.ort_lib = ort_lib.map(Path::to_path_buf);
        self.threads = threads;
        self
    }

    /// Loads the runtime the settings ask for (ONNX Runtime's library is loaded here,
    /// once per process).
    pub fn load_runtime(&self) -> Result<Runtime, Error> {
        Runtime::choose(self.runtime, self.ort_lib.as_deref(), self.threads)
            .map_err(|e| Error::Runtime(e.to_string()))
    }

    /// Quantize after the lossless passes.
    pub fn quantize(mut self, q: Quantize) -> Self {
        self.quantize = Some(q);
        self
    }

    /// The optimizer that `settings` describe (unset keys keep the defaults of
    /// [`Optimizer::new`]); errors name the bad value.
    pub fn from_settings(settings: &Settings) -> Result<Optimizer, Error> {
        let mut o = Optimizer::new();
        if let Some(l) = settings.level {
            o.level = match l {
                0 => Level::O0,
                1 => Level::O1,
                2 => Level::O2,
                _ => return Err(Error::Config(format!("level {l}: expected 0, 1 or 2"))),
            };
        }
        o.passes = settings.passes.clone();
        o.disable = settings.disable.clone().unwrap_or_default();
        o.input_shapes = settings.input_dims();
        if let Some(f) = settings.fold_limit {
            o.fold_limit = f;
        }
        o.external_data_threshold = settings.external_data_threshold;
        if let Some(name) = &settings.external_data_name {
            whittle_onnx::targets::check_data_name(name).map_err(Error::Config)?;
            o.external_data_name = Some(name.clone());
        }
        o.opset = settings.opset;
        for e in settings.exclude.iter().flatten() {
            o = o.try_exclude(e)?;
        }
        for e in settings.enable.iter().flatten() {
            o = o.try_enable(e)?;
        }
        o.quantize = crate::config::quantize(settings)?;
        o.decompose = decompose_settings(settings)?;
        o.prune = prune_settings(settings)?;
        o.quant_budget = quant_budget(settings, o.quantize.as_ref())?;
        if let Some(Quantize::Int8Dynamic(d)) = &o.quantize
            && d.act_scale == whittle_compress::quant::ActScale::Auto
            && o.quant_budget.is_none()
        {
            return Err(Error::Config(crate::steps::AUTO_NEEDS_BUDGET.into()));
        }
        o.calibrate = settings.calibrate.clone();
        if let Some(r) = &settings.runtime {
            o.runtime = r.parse().map_err(Error::Config)?;
        }
        o.ort_lib = settings.ort_lib.clone();
        if let Some(h) = settings.holdout {
            if !(0.0..1.0).contains(&h) {
                return Err(Error::Config(format!(
                    "holdout {h}: expected a share from 0 (judge on the fit data) to below 1"
                )));
            }
            o.holdout = h;
        }
        o.threads = match settings.threads {
            Some(0) => return Err(Error::Config("threads 0: expected at least 1".into())),
            t => t.map(|n| n as usize),
        };
        o.lossless_pipeline()?; // unknown pass names fail here, not mid-run
        Ok(o)
    }

    /// Do not rewrite at `node:NAME`, at any node of `op:Type`, or with `rule:NAME`
    /// anywhere.
    pub fn try_exclude(mut self, what: &str) -> Result<Self, Error> {
        let entry = match what.split_once(':') {
            Some(("node", n)) if !n.is_empty() => ("*".to_string(), n.to_string()),
            Some(("rule", r)) if !r.is_empty() => (r.to_string(), "*".to_string()),
            Some(("op", o)) if !o.is_empty() => {
                self.exclude_ops.push(o.to_string());
                return Ok(self);
            }
            _ => {
                return Err(Error::Config(format!(
                    "exclude '{what}': expected node:NAME, op:TYPE or rule:NAME"
                )));
            }
        };
        self.exclude.push(entry);
        Ok(self)
    }

    /// Also run the off-by-default rule `rule:NAME` (a fusion measured slower in some
    /// runtime). Naming a rule that is on by default is allowed and changes nothing.
    pub fn try_enable(mut self, what: &str) -> Result<Self, Error> {
        let known = whittle_passes::fuse::rules();
        match what.split_once(':') {
            Some(("rule", r)) if known.iter().any(|k| k.name() == r) => {
                self.enable.push(r.to_string());
                Ok(self)
            }
            Some(("rule", r)) => Err(Error::Config(format!(
                "enable '{what}': no fusion rule '{r}' (rules that are off by default: {})",
                whittle_passes::fuse::opt_in_rules().join(", ")
            ))),
            _ => Err(Error::Config(format!(
                "enable '{what}': expected rule:NAME"
            ))),
        }
    }

    /// Store tensors of at least `bytes` in an external data file when writing.
    pub fn external_data_threshold(mut self, bytes: u64) -> Self {
        self.external_data_threshold = Some(bytes);
        self
    }

    /// The optimization level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Run exactly these passes instead of the level's.
    pub fn passes(mut self, names: &[&str]) -> Self {
        self.passes = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Skip these passes.
    pub fn disable(mut self, names: &[&str]) -> Self {
        self.disable.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Fix the dims of input `name` (symbols it declared are bound everywhere).
    pub fn input_shape(mut self, name: &str, dims: &[i64]) -> Self {
        self.input_shapes.push((
            name.to_string(),
            dims.iter().map(|d| Dim::Known(*d)).collect(),
        ));
        self
    }

    /// Like [`Optimizer::input_shape`], with symbolic or unknown dims allowed.
    pub fn input_dims(mut self, name: &str, dims: Vec<Dim>) -> Self {
        self.input_shapes.push((name.to_string(), dims));
        self
    }

    /// The file name the output's external data goes to (default `<output>.data`).
    pub fn external_data_name(&self) -> Option<&str> {
        self.external_data_name.as_deref()
    }

    /// Largest constant folding may create, in bytes.
    pub fn fold_limit(mut self, bytes: u64) -> Self {
        self.fold_limit = bytes;
        self
    }

    /// A canonical description of the settings (part of [`crate::build`]'s cache key):
    /// the whittle version and the whole resolved optimizer, every field of it, so that
    /// no setting can be left out of the key (a stale output would be reused).
    pub fn fingerprint(&self) -> String {
        format!("whittle {} {self:?}", env!("CARGO_PKG_VERSION"))
    }

    /// The lossless phase's passes (the level's, or exactly `passes`, less `disable`).
    pub(crate) fn lossless_pipeline(&self) -> Result<Pipeline, Error> {
        let mut p = match &self.passes {
            Some(names) => Pipeline::with_passes(names).map_err(Error::Config)?,
            None => Pipeline::for_level(self.level),
        };
        p.disable(&self.disable).map_err(Error::Config)?;
        Ok(p)
    }

    /// A fresh pass context with these settings (input shapes, fold limit, exclusions)
    /// and at most `rewrite_limit` rewrites.
    pub(crate) fn pass_cx(&self, rewrite_limit: Option<usize>) -> PassCx {
        PassCx::new(PassSettings {
            input_shapes: self.input_shapes.clone(),
            fold_limit: self.fold_limit,
            deny: self.exclude.clone(),
            deny_ops: self.exclude_ops.clone(),
            enable: self.enable.clone(),
            rewrite_limit,
            evaluator: Evaluator::new(whittle_eval::TractNodes),
            record_edits: false,
        })
    }

    /// The export settings: external data in one file beside the output, named by
    /// `external-data-name` or `<output file name>.data`; `input`, the files the model
    /// was read from, which the save must not write over.
    pub fn export_options(&self, input: Option<InputFiles>) -> ExportOptions {
        ExportOptions {
            external_threshold: self.external_data_threshold,
            external_location: self.external_data_name.clone(),
            input,
            ..ExportOptions::default()
        }
    }

    /// Optimizes `model` in place (all phases, no verification).
    pub fn optimize_model(&self, model: &mut Model) -> Result<Report, Error> {
        self.execute(model, crate::RunOptions::default())
    }

    /// Optimizes a model written in whittle's text form (what `whittle dump` prints and
    /// rule tests are written in) and returns the result in that form, every value
    /// printed in full: the quickest way to see what a plan does to a small graph.
    pub fn optimize_text(&self, text: &str) -> Result<(String, Report), Error> {
        let mut model = whittle_ir::text::parse_model(text)
            .map_err(|e| Error::Config(format!("text model: {e}")))?;
        let report = self.optimize_model(&mut model)?;
        let opts = whittle_ir::text::PrintOptions::default();
        Ok((whittle_ir::text::print_model(&model, &opts), report))
    }

    /// Optimizes an encoded model (no external data) and returns the new encoding.
    pub fn optimize_bytes(&self, bytes: &[u8]) -> Result<(Vec<u8>, Report), Error> {
        let label = Path::new("<bytes>");
        let mut model = whittle_onnx::read_model_bytes(bytes.to_vec().into(), label, None)?;
        let report = self.optimize_model(&mut model)?;
        let out = whittle_onnx::encode_model(&model)?;
        Ok((out, report))
    }

    /// Reads `input`, optimizes it and writes `output` atomically (external data, if
    /// any, goes to `<output file name>.data` beside it; no file but those two is
    /// written over, and never the input's files unless `output` is the input).
    /// This is the job every entry point runs ([`crate::job`]), with these settings.
    pub fn optimize_file(&self, input: &Path, output: &Path) -> Result<Report, Error> {
        let source = crate::job::Source::File(input.to_path_buf());
        let job = crate::job::Job::open(&source, crate::job::Resolved::given(self.clone()))?;
        let outcome = job.run(crate::RunOptions::default())?;
        outcome.save(output)?;
        Ok(outcome.done)
    }
}

/// The budget quantization is held to: `cosine=X` or `top1=X` when a quantize mode is
/// set (with decompose too, the same budget holds for the model both leave). `tol` and
/// `exact` are decomposition budgets.
fn quant_budget(
    s: &crate::config::Settings,
    q: Option<&Quantize>,
) -> Result<Option<ErrorBudget>, Error> {
    let (Some(text), Some(q)) = (&s.budget, q) else {
        return Ok(None);
    };
    let b = text.parse::<ErrorBudget>().map_err(Error::Config)?;
    match (b, q) {
        (ErrorBudget::Cosine(_) | ErrorBudget::Top1(_), _) => Ok(Some(b)),
        _ if s.decompose.is_some() || s.prune.is_some() => Ok(None),
        _ => Err(Error::Config(format!(
            "budget {b}: quantization takes cosine=X or top1=X"
        ))),
    }
}

/// The kinds named for step `what` (`--prune`, `--decompose`); an unknown one lists
/// `valid`.
fn parse_kinds<K>(
    what: &str,
    names: &[String],
    parse: fn(&str) -> Option<K>,
    valid: &[&str],
) -> Result<Vec<K>, Error> {
    names
        .iter()
        .map(|n| {
            parse(n).ok_or_else(|| {
                Error::Config(format!(
                    "{what} '{n}': expected one of {}",
                    valid.join(", ")
                ))
            })
        })
        .collect()
}

/// `budget` and `min-gain` from the settings, else the step's defaults.
fn budget_and_gain(
    s: &crate::config::Settings,
    budget: ErrorBudget,
    min_gain: f64,
) -> Result<(ErrorBudget, f64), Error> {
    let budget = match &s.budget {
        Some(b) => b.parse::<ErrorBudget>().map_err(Error::Config)?,
        None => budget,
    };
    let min_gain = s.min_gain.unwrap_or(min_gain);
    if !(min_gain.is_finite() && min_gain > 0.0) {
        return Err(Error::Config(format!(
            "min-gain {min_gain}: expected a positive number"
        )));
    }
    Ok((budget, min_gain))
}

/// The pruning the settings ask for, if any; errors name the bad value.
fn prune_settings(s: &crate::config::Settings) -> Result<Option<prune::Options>, Error> {
    let Some(names) = &s.prune else {
        return Ok(None);
    };
    let kinds = parse_kinds("prune", names, prune::Kind::parse, prune::Kind::NAMES)?;
    step_options(s, kinds, prune::Options::default()).map(Some)
}

/// The decomposition the settings ask for, if any; errors name the bad value.
fn decompose_settings(s: &crate::config::Settings) -> Result<Option<decompose::Options>, Error> {
    let Some(names) = &s.decompose else {
        let orphan = |key: &str, with: &str| Error::Config(format!("{key} applies to {with}"));
        if s.prune.is_none() {
            if s.measure.is_some() {
                return Err(orphan("measure", "decompose and prune; neither is set"));
            }
            if s.min_gain.is_some() {
                return Err(orphan("min-gain", "decompose and prune; neither is set"));
            }
        }
        if s.budget.is_some() && s.quantize.is_none() && s.prune.is_none() {
            return Err(orphan(
                "budget",
                "prune, decompose and quantize; none is set",
            ));
        }
        return Ok(None);
    };
    let kinds = parse_kinds("decompose", names, Kind::parse, Kind::NAMES)?;
    step_options(s, kinds, decompose::Options::default()).map(Some)
}

/// A budgeted step's options: `kinds`, and `budget`, `min-gain` and `measure` from the
/// settings over the step's `defaults`.
fn step_options<K>(
    s: &crate::config::Settings,
    kinds: Vec<K>,
    defaults: StepOptions<K>,
) -> Result<StepOptions<K>, Error> {
    let (budget, min_gain) = budget_and_gain(s, defaults.budget, defaults.min_gain)?;
    Ok(StepOptions {
        kinds,
        budget,
        min_gain,
        measure: s.measure.unwrap_or(false),
    })
}
