//! `whittle tune`: the fastest (or smallest) model within an accuracy budget, found by
//! measurement. Candidates are plans of the one driver ([`plans`]): each is run through
//! the same [`Job`] `whittle optimize` runs, then timed in the chosen runtime on one
//! sample and judged on the held-out part of the data (the sets no step was fit on),
//! with the budget's confidence bound. Measurements are cached by content
//! ([`cache`]); `time_limit` stops the search with the best plan found so far. After
//! the single plans, the best structural plan (pruning, decomposition) and the best
//! quantization that met the budget are tried together.

pub mod cache;
pub mod front;
pub mod plans;

pub use cache::Cache;

use crate::config::Settings;
use crate::job::{Job, Outcome, Resolved, Source};
use crate::optimizer::{Error, Optimizer};
use crate::session::RunOptions;
use crate::steps::{StepData, first_sample};
use plans::{Plan, Skipped};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use whittle_compress::ErrorBudget;
use whittle_eval::{Judge, Runtime, Score};
use whittle_ir::{Model, Tensor};

/// What tune minimises among the plans that meet the budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    #[default]
    Latency,
    Size,
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "latency" => Ok(Objective::Latency),
            "size" => Ok(Objective::Size),
            _ => Err(format!("objective '{s}': expected latency or size")),
        }
    }
}

/// What to tune for.
#[derive(Clone, Debug, Default)]
pub struct TuneOptions {
    /// The user's settings (runtime, threads, calibration data, input shapes, holdout,
    /// exclusions…); every plan is laid over them.
    pub base: Settings,
    /// The whole-model budget, `cosine=X` or `top1=X`.
    pub budget: String,
    pub objective: Objective,
    /// Stop measuring after this long, keeping the best plan so far.
    pub time_limit: Option<Duration>,
    /// Where measurements are cached (None: not cached).
    pub cache: Option<PathBuf>,
}

/// One plan's measurement (or the original model's, `reference`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measured {
    pub plan: String,
    /// The keys the plan sets over the user's.
    pub settings: Settings,
    /// The model as given, the row speeds and sizes are relative to.
    pub reference: bool,
    /// Median milliseconds of one sample in the runtime.
    pub latency_ms: f64,
    /// Initializer bytes.
    pub bytes: u64,
    pub nodes: usize,
    /// Held-out mean output cosine to the original, its 95 % lower bound, top-1
    /// agreement (plain, and the margin-kept share's lower bound), relative error.
    pub cosine: f64,
    pub cosine_low: f64,
    pub top1: f64,
    pub stable: f64,
    pub stable_low: f64,
    pub rel_err: f64,
    pub rows: usize,
    pub samples: usize,
    /// Whether the budget holds at its confidence bound.
    pub held: bool,
    /// Why the plan did not run (a budget it cannot meet, a model the runtime refuses).
    pub error: Option<String>,
    /// Seconds the plan took to optimize and measure.
    pub seconds: f64,
    /// What the driver measured on the way (forms, levels, block sizes kept).
    pub notes: Vec<String>,
    /// Read from the cache in this run.
    #[serde(skip)]
    pub cached: bool,
}

impl Measured {
    fn score(&self) -> Score {
        Score {
            cosine: self.cosine,
            top1: self.top1,
            stable: self.stable,
            rel_err: self.rel_err,
            rows: self.rows,
            samples: self.samples,
            cosine_low: self.cosine_low,
            stable_low: self.stable_low,
        }
    }
}

/// What tune found.
pub struct Tuned {
    /// The original model first, then each plan in the order it was measured.
    pub measured: Vec<Measured>,
    pub skipped: Skipped,
    /// Indices into `measured` of the Pareto front (latency, size, accuracy).
    pub front: Vec<usize>,
    /// Index of the plan chosen, if any met the budget.
    pub chosen: Option<usize>,
    pub runtime: String,
    /// Where the judged data came from.
    pub data: String,
    pub budget: String,
    pub objective: Objective,
    /// Why the search stopped before every plan was measured.
    pub stopped: Option<String>,
    pub seconds: f64,
    /// The chosen plan's run, ready to save.
    pub outcome: Option<Outcome>,
}

impl Tuned {
    /// The `whittle.toml` keys that reproduce the chosen plan with `whittle optimize`.
    /// Paths are made absolute, so the file works wherever it is saved.
    pub fn toml(&self, base: &Settings) -> Option<String> {
        let m = &self.measured[self.chosen?];
        let mut s = base.overlay(&m.settings);
        for p in [&mut s.calibrate, &mut s.ort_lib].into_iter().flatten() {
            if let Ok(abs) = std::fs::canonicalize(&*p) {
                *p = abs;
            }
        }
        toml::to_string(&s).ok()
    }
}

/// The run-wide state every plan is measured with.
struct Bench<'a> {
    input: &'a Path,
    opts: &'a TuneOptions,
    budget: ErrorBudget,
    rt: Runtime,
    judge: Judge,
    sample: Vec<Tensor>,
    cache: Option<Cache>,
    /// Hashes of the input's files and of the data.
    content: [String; 2],
}

/// Tunes the model at `input` (see the module doc); `progress` hears what is measured.
pub fn tune(
    input: &Path,
    opts: &TuneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Tuned, Error> {
    let start = Instant::now();
    let (bench, model, source) = Bench::new(input, opts)?;
    let features = plans::Features::of(&model).with_reuse(&model, &bench.sample);
    let size = opts.objective == Objective::Size;
    let (plans, skipped) = plans::plans(
        &features,
        opts.base.calibrate.is_some(),
        &bench.rt,
        (&opts.budget, size),
    );
    let mut search = Search {
        bench: &bench,
        measured: vec![bench.reference(&model)?],
        best: None,
        start,
    };
    let mut stopped = search.measure_all(&plans, progress)?;
    if stopped.is_none()
        && let Some(c) = combination(&plans, &search.measured[1..], opts.objective)
    {
        stopped = search.measure_all(&[c], progress)?;
    }
    let Search { measured, best, .. } = search;
    let chosen = front::choose(&measured, opts.objective);
    let outcome = match (chosen, best) {
        (Some(c), Some((b, o))) if b == c => Some(o),
        (Some(c), _) => Some(bench.run(&measured[c].settings)?),
        (None, _) => None,
    };
    Ok(Tuned {
        front: front::front(&measured),
        chosen,
        measured,
        skipped,
        runtime: bench.rt.describe(),
        data: source,
        budget: opts.budget.clone(),
        objective: opts.objective,
        stopped,
        seconds: start.elapsed().as_secs_f64(),
        outcome,
    })
}

/// The measurements so far, and the run of the best plan (one model in memory).
struct Search<'a> {
    bench: &'a Bench<'a>,
    measured: Vec<Measured>,
    best: Option<(usize, Outcome)>,
    start: Instant,
}

impl Search<'_> {
    /// Measures `plans` in order; stops between plans at the time limit and says so.
    fn measure_all(
        &mut self,
        plans: &[Plan],
        progress: &mut dyn FnMut(&str),
    ) -> Result<Option<String>, Error> {
        let objective = self.bench.opts.objective;
        for (k, plan) in plans.iter().enumerate() {
            if let Some(limit) = self.bench.opts.time_limit
                && self.start.elapsed() >= limit
            {
                let done = self.measured.len() - 1;
                return Ok(Some(format!(
                    "time limit {limit:?} reached after {done} plans, {} not measured",
                    plans.len() - k
                )));
            }
            progress(&format!("{} ({}/{})", plan.name, k + 1, plans.len()));
            let (m, outcome) = self.bench.measure(plan)?;
            self.measured.push(m);
            // Keep the run of the last plan when it is the best so far.
            let last = self.measured.len() - 1;
            if outcome.is_some() && front::choose(&self.measured, objective) == Some(last) {
                self.best = outcome.map(|o| (last, o));
            }
        }
        Ok(None)
    }
}

/// The best structural plan and the best quantization that met the budget, as one plan.
fn combination(queue: &[Plan], measured: &[Measured], objective: Objective) -> Option<Plan> {
    let best = |pick: fn(&Plan) -> bool| {
        let idx: Vec<usize> = (0..queue.len()).filter(|i| pick(&queue[*i])).collect();
        let subset: Vec<Measured> = idx.iter().map(|i| measured[*i].clone()).collect();
        front::choose(&subset, objective).map(|k| &queue[idx[k]])
    };
    let (a, b) = (best(plans::is_structural)?, best(plans::is_quantizing)?);
    Some(plans::combined(a, b))
}

impl<'a> Bench<'a> {
    /// Reads the model, loads the runtime, prepares the data and its judge.
    fn new(input: &'a Path, opts: &'a TuneOptions) -> Result<(Bench<'a>, Model, String), Error> {
        let budget: ErrorBudget = opts.budget.parse().map_err(Error::Config)?;
        if !matches!(budget, ErrorBudget::Cosine(_) | ErrorBudget::Top1(_)) {
            return Err(Error::Config(format!(
                "budget {}: tune judges the whole model: give cosine=X or top1=X",
                opts.budget
            )));
        }
        let base = Optimizer::from_settings(&opts.base)?;
        let rt = base.load_runtime()?;
        let model = whittle_onnx::read_model(input)?;
        let data = StepData::prepare(
            (&rt, base.holdout),
            &model,
            base.calibrate.as_deref(),
            true,
            true,
        )?;
        let (Some(sets), Some(judge)) = (data.sets, data.judge) else {
            return Err(Error::Config("tune: no input data was prepared".into()));
        };
        whittle_compress::budget::warn_unshowable(budget, &judge);
        let first = sets.sets.first().cloned().unwrap_or_default();
        let content = content_hashes(input, &model, base.calibrate.as_deref())?;
        let bench = Bench {
            input,
            opts,
            budget,
            rt,
            judge,
            sample: first_sample(&first),
            cache: opts.cache.clone().map(Cache::new),
            content,
        };
        Ok((bench, model, sets.source))
    }

    /// The original model's row.
    fn reference(&self, model: &Model) -> Result<Measured, Error> {
        let start = Instant::now();
        let latency_ms = self.latency(model)?;
        let (nodes, bytes) = crate::report::size(model);
        let mut m = measured_row("original", Settings::default(), Score::exact(1.0, 1.0, 0.0));
        (m.reference, m.latency_ms, m.bytes, m.nodes, m.held) =
            (true, latency_ms, bytes, nodes, true);
        m.seconds = start.elapsed().as_secs_f64();
        Ok(m)
    }

    /// Runs `plan` (or reads it from the cache) and measures it; the run, when it ran.
    fn measure(&self, plan: &Plan) -> Result<(Measured, Option<Outcome>), Error> {
        let full = self.opts.base.overlay(&plan.settings);
        let key = self.key(&full);
        if let Some(mut m) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            m.cached = true;
            m.held = m.error.is_none() && self.budget.holds(&m.score());
            return Ok((m, None));
        }
        let start = Instant::now();
        let mut row = measured_row(
            &plan.name,
            plan.settings.clone(),
            Score::exact(0.0, 0.0, 1.0),
        );
        let outcome = match self
            .run(&plan.settings)
            .and_then(|o| self.judge_run(&mut row, o))
        {
            Ok(o) => Some(o),
            Err(e) => {
                row.error = Some(crate::config::one_line(&e.to_string()));
                None
            }
        };
        row.seconds = start.elapsed().as_secs_f64();
        if let Some(c) = &self.cache {
            c.put(&key, &row);
        }
        Ok((row, outcome))
    }

    /// Times and judges `o`, filling `row`.
    fn judge_run(&self, row: &mut Measured, o: Outcome) -> Result<Outcome, Error> {
        let eval = |e: whittle_eval::EvalError| Error::BudgetMissed(e.to_string());
        let score = self.judge.score(&o.model).map_err(eval)?;
        row.latency_ms = self.latency(&o.model)?;
        (row.nodes, row.bytes) = crate::report::size(&o.model);
        fill_score(row, &score);
        row.held = self.budget.holds(&score);
        row.notes = o
            .done
            .notes
            .iter()
            .filter(|(at, _)| at == "graph")
            .map(|(_, n)| n.clone())
            .collect();
        Ok(o)
    }

    /// One run of the driver with `plan` over the user's settings.
    fn run(&self, plan: &Settings) -> Result<Outcome, Error> {
        let full = self.opts.base.overlay(plan);
        let resolved = Resolved {
            optimizer: Optimizer::from_settings(&full)?,
            settings: Some(full),
            config: None,
        };
        Job::open(&Source::File(self.input.to_path_buf()), resolved)?.run(RunOptions::default())
    }

    fn latency(&self, model: &Model) -> Result<f64, Error> {
        whittle_compress::timing::median_ms(&self.rt, model, &self.sample, "tune")
            .map_err(|e| Error::BudgetMissed(format!("timing: {e}")))
    }

    /// The cache key of a plan with settings `full`. The runtime enters as the report
    /// describes it (library, version, threads), not as the keys that chose it, so
    /// `--runtime tract` and the default share their measurements.
    fn key(&self, full: &Settings) -> String {
        let plan = Settings {
            runtime: None,
            ort_lib: None,
            threads: None,
            ..full.clone()
        };
        let settings = serde_json::to_string(&plan).unwrap_or_default();
        cache::key(&[
            &self.content[0],
            &self.content[1],
            &settings,
            &self.rt.describe(),
            env!("CARGO_PKG_VERSION"),
        ])
    }
}

/// Hashes of the model's files (the model and its external data) and of the data.
fn content_hashes(input: &Path, model: &Model, data: Option<&Path>) -> Result<[String; 2], Error> {
    let io = |p: &Path, e: std::io::Error| Error::Config(format!("{}: {e}", p.display()));
    let files = whittle_onnx::InputFiles::of(model, input);
    let mut all = vec![files.model.clone()];
    all.extend(files.data.iter().cloned());
    let model_hash = cache::hash_files(&all).map_err(|e| io(input, e))?;
    let data_hash = match data {
        Some(d) => {
            let under = cache::files_under(d).map_err(|e| io(d, e))?;
            cache::hash_files(&under).map_err(|e| io(d, e))?
        }
        None => "random".to_string(),
    };
    Ok([model_hash, data_hash])
}

/// A row for `plan` with `score` (figures filled in by the measurement).
fn measured_row(plan: &str, settings: Settings, score: Score) -> Measured {
    let mut m = Measured {
        plan: plan.to_string(),
        settings,
        reference: false,
        latency_ms: 0.0,
        bytes: 0,
        nodes: 0,
        cosine: 0.0,
        cosine_low: 0.0,
        top1: 0.0,
        stable: 0.0,
        stable_low: 0.0,
        rel_err: 0.0,
        rows: 0,
        samples: 0,
        held: false,
        error: None,
        seconds: 0.0,
        notes: Vec::new(),
        cached: false,
    };
    fill_score(&mut m, &score);
    m
}

fn fill_score(m: &mut Measured, s: &Score) {
    (m.cosine, m.cosine_low, m.top1) = (s.cosine, s.cosine_low, s.top1);
    (m.stable, m.stable_low, m.rel_err) = (s.stable, s.stable_low, s.rel_err);
    (m.rows, m.samples) = (s.rows, s.samples);
}
