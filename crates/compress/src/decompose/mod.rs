//! Decomposition: layers replaced by cheaper factored ones, within an error budget
//! (`whittle optimize --decompose conv,gemm,spatial --budget ...`). Lossy and opt-in.
//!
//! - [`conv`]: Conv → depthwise Conv + 1×1 pointwise Conv (m terms per input channel);
//! - [`gemm`]: MatMul/Gemm weight W ≈ R·Q at rank r (two products);
//! - [`spatial`]: kh×kw Conv → kh×1 Conv + 1×kw Conv at rank r.
//!
//! The work is model-level, not a [`whittle_passes::Pass`]: choosing ranks against a whole-model
//! budget runs the model (tract) on data. Steps: find the layers ([`layer`]), gather their
//! input statistics ([`stats`]), factor each layer once at full rank ([`factor`]), choose a
//! rank per layer ([`search`]), rewrite, and report per layer and in total.

pub mod conv;
pub mod factor;
pub mod gemm;
pub mod layer;
mod measure;
pub mod refit;
pub mod search;
pub mod spatial;
pub mod stats;

pub use crate::budget::ErrorBudget;
use factor::{Factored, Weighting};
use layer::{Layer, Shape};
use nalgebra::{DMatrix, DVector};
use thiserror::Error;
use whittle_eval::EvalError;
use whittle_eval::Score;
use whittle_ir::{IrError, Model, Tensor};
use whittle_passes::pass::{Grant, PassCx};

/// Which factorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Conv → depthwise + pointwise.
    Conv,
    /// MatMul/Gemm → two products through rank r.
    Gemm,
    /// k×k Conv → k×1 + 1×k.
    Spatial,
}

impl Kind {
    /// The names `--decompose` accepts.
    pub const NAMES: &'static [&'static str] = &["conv", "gemm", "spatial"];

    /// Parses one `--decompose` name.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "conv" => Some(Kind::Conv),
            "gemm" => Some(Kind::Gemm),
            "spatial" => Some(Kind::Spatial),
            _ => None,
        }
    }

    /// The name users type (and `--exclude rule:` matches).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Conv => "conv",
            Kind::Gemm => "gemm",
            Kind::Spatial => "spatial",
        }
    }

    /// The rule name in logs and `--exclude rule:NAME`.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::Conv => "decompose-conv",
            Kind::Gemm => "decompose-gemm",
            Kind::Spatial => "decompose-spatial",
        }
    }
}

/// What to decompose and how far.
pub type Options = crate::budget::StepOptions<Kind>;

impl Default for Options {
    fn default() -> Self {
        Options {
            kinds: vec![Kind::Conv],
            budget: ErrorBudget::Tol(0.1),
            min_gain: 1.2,
            measure: false,
        }
    }
}

/// The inputs the model is run on while decomposing.
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// Input sets a step fits on (statistics, refits, ranges), one tensor per graph
    /// input each.
    pub sets: Vec<Vec<Tensor>>,
    /// Input sets held out: what budgets are judged on (empty: judged on `sets`).
    pub held: Vec<Vec<Tensor>>,
    /// The runtime that runs the model on them (statistics, judging).
    pub runtime: whittle_eval::Runtime,
    /// Real calibration data (data-aware factorization, bias correction), or random
    /// inputs (weight SVD; the budget is judged on noise).
    pub calibrated: bool,
    /// Where the sets came from, for the report.
    pub source: String,
}

impl Data {
    /// The sets budgets are judged on: the held-out ones, else those fit on.
    pub fn judged(&self) -> &[Vec<Tensor>] {
        match self.held.is_empty() {
            true => &self.sets,
            false => &self.held,
        }
    }
}

/// Why a decomposition failed (the model is left as it was).
#[derive(Debug, Error)]
pub enum DecomposeError {
    #[error("decompose: {0}")]
    Eval(#[from] EvalError),
    #[error("decompose: {0}")]
    Ir(#[from] IrError),
    #[error("decompose: {0}")]
    Data(String),
}

/// One layer factored at full rank by one kind; truncated per candidate rank.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub kind: Kind,
    pub blocks: Vec<Factored>,
    /// The blocks as they were (bias correction needs A − B).
    pub originals: Vec<DMatrix<f64>>,
    /// Mean input of each block (empty: no correction).
    pub means: Vec<DVector<f64>>,
    /// Conv with whole-patch statistics: the pointwise weights are solved jointly.
    pub refit: Option<refit::Refit>,
}

impl Prepared {
    fn new(kind: Kind) -> Prepared {
        Prepared {
            kind,
            blocks: Vec::new(),
            originals: Vec::new(),
            means: Vec::new(),
            refit: None,
        }
    }

    /// The one block of a dense or spatial factorization, and rank `r` kept within it.
    pub(crate) fn single(&self, r: usize) -> Option<(&Factored, usize)> {
        let b = self.blocks.first()?;
        Some((b, r.clamp(1, b.full_rank().max(1))))
    }

    /// Adds block `a` factored under `weight`; `mean` enables bias correction (only
    /// when every block has one).
    fn push(&mut self, a: &DMatrix<f64>, weight: Option<&Weighting>, mean: Option<DVector<f64>>) {
        self.blocks.push(Factored::new(a, weight));
        self.originals.push(a.clone());
        match mean {
            Some(m) if self.means.len() + 1 == self.blocks.len() => self.means.push(m),
            _ => self.means.clear(),
        }
    }

    /// Relative error at rank `m`: of the weights, or of the layer's outputs on the data
    /// when the blocks were weighted by it.
    pub fn error(&self, m: usize) -> f64 {
        factor::relative_error(&self.blocks, m)
    }

    /// The rank-m blocks written into a flat weight of `len` elements; `index(block,
    /// row, col)` says where each element goes.
    pub fn scatter(
        &self,
        m: usize,
        len: usize,
        index: impl Fn(usize, usize, usize) -> usize,
    ) -> Vec<f32> {
        let mut w = vec![0f32; len];
        for (b, blk) in self.blocks.iter().enumerate() {
            let a = blk.approx(m);
            for r in 0..a.nrows() {
                for c in 0..a.ncols() {
                    w[index(b, r, c)] = a[(r, c)] as f32;
                }
            }
        }
        w
    }
}

/// One way to rewrite a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
    pub kind: Kind,
    pub rank: usize,
    /// MACs per sample and weight elements after the rewrite.
    pub macs: u64,
    pub params: u64,
    /// Predicted relative error (see [`Prepared::error`]).
    pub error: f64,
}

/// What happened to one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    pub site: String,
    pub op: String,
    pub macs_before: u64,
    pub params_before: u64,
    /// The rewrite done, if any.
    pub chosen: Option<Choice>,
    /// The rank at which the chosen kind is exact.
    pub full_rank: usize,
    /// tract latency (ms) before/after, with `--measure`.
    pub latency_ms: Option<(f64, f64)>,
    /// Why the layer was left alone (or how the rank was picked).
    pub why: String,
}

/// What a decomposition did.
#[derive(Clone, Debug, PartialEq)]
pub struct DecomposeReport {
    pub budget: ErrorBudget,
    /// Where the data came from and whether it was calibration data.
    pub data: String,
    pub layers: Vec<LayerReport>,
    /// Conv+MatMul+Gemm MACs per sample of the candidate layers, before and after.
    pub macs_before: u64,
    pub macs_after: u64,
    /// The rewritten model against the original on the data.
    pub score: Option<Score>,
    /// Whole-model evaluations the budget search ran.
    pub evaluations: usize,
}

impl DecomposeReport {
    /// One line per layer and a total, for notes and the terminal.
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .layers
            .iter()
            .map(|l| {
                let text = match &l.chosen {
                    Some(c) => format!(
                        "decompose {} rank {}/{}: error {:.2e}, MACs {} -> {} ({:.2}x), params {} -> {}{}",
                        c.kind.name(),
                        c.rank,
                        l.full_rank,
                        c.error,
                        l.macs_before,
                        c.macs,
                        l.macs_before as f64 / c.macs.max(1) as f64,
                        l.params_before,
                        c.params,
                        l.latency_ms
                            .map(|(a, b)| format!(", tract {a:.3} -> {b:.3} ms"))
                            .unwrap_or_default()
                    ),
                    None => format!("decompose: kept ({})", l.why),
                };
                (l.site.clone(), text)
            })
            .collect();
        let total = crate::budget::total_note(
            self.budget,
            "conv/gemm",
            (self.macs_before, self.macs_after),
            &self.data,
            self.score.as_ref(),
        );
        out.push(("(decompose total)".into(), total));
        out
    }
}

/// A layer with its factorizations and candidate rewrites (built by [`decompose`]).
#[derive(Clone, Debug)]
pub struct Site {
    pub layer: Layer,
    pub prepared: Vec<Prepared>,
    /// Candidate rewrites, cheapest first within each kind.
    pub choices: Vec<Choice>,
}

impl Site {
    /// Why a site without candidates is left alone.
    fn no_choice_reason(&self) -> String {
        if self.prepared.is_empty() {
            "no requested factorization applies (or excluded)".into()
        } else {
            "no rank pays (MACs would not fall by --min-gain)".into()
        }
    }

    fn prepared(&self, kind: Kind) -> Option<&Prepared> {
        self.prepared.iter().find(|p| p.kind == kind)
    }
}

/// Decomposes `model` in place as `opts` says, judged on `data`; returns what it did.
pub fn decompose(
    model: &mut Model,
    opts: &Options,
    data: &Data,
    cx: &mut PassCx,
) -> Result<DecomposeReport, DecomposeError> {
    if data.sets.is_empty() {
        return Err(DecomposeError::Data(
            "no input data to run the model on".into(),
        ));
    }
    let mut layers = layer::find(&model.graph, cx);
    let stats = stats::gather(
        &data.runtime,
        model,
        &mut layers,
        &data.sets,
        data.calibrated,
    )?;
    let sites: Vec<Site> = layers
        .into_iter()
        .zip(&stats)
        .filter(|(l, _)| l.macs() > 0)
        .map(|(l, s)| prepare(model, l, s, opts, data.calibrated, cx))
        .collect::<Result<_, _>>()?;
    let judge = whittle_eval::Judge::new(&data.runtime, model, data.judged())?;
    crate::budget::warn_unshowable(opts.budget, &judge);
    let mut outcome = match opts.budget {
        ErrorBudget::Exact => search::exact(&sites),
        ErrorBudget::Tol(t) => search::by_tolerance(&sites, t),
        ErrorBudget::Cosine(_) | ErrorBudget::Top1(_) => {
            search::allocate(model, &sites, &judge, opts.budget)?
        }
    };
    if opts.measure {
        measure::keep_faster(&data.runtime, model, &sites, &stats, &mut outcome)?;
    }
    let mut rewritten = model.clone();
    let mut report_layers = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        let mut chosen = outcome.choices[i];
        if let Some(c) = chosen {
            match cx.grant("decompose", c.kind.rule(), &site.layer.site) {
                Grant::Yes => search::emit(&mut rewritten.graph, site, c)?,
                Grant::Denied | Grant::Spent => chosen = None,
            }
        }
        report_layers.push(LayerReport {
            site: site.layer.site.clone(),
            op: rewritten_op(model, &site.layer),
            macs_before: site.layer.macs(),
            params_before: site.layer.params(),
            chosen,
            full_rank: chosen.map_or(0, |c| site.layer.full_rank(c.kind)),
            latency_ms: outcome.latency[i],
            why: outcome.why[i].clone(),
        });
    }
    let score = judge.score(&rewritten)?;
    *model = rewritten;
    let macs_before = sites.iter().map(|s| s.layer.macs()).sum();
    let macs_after = report_layers
        .iter()
        .map(|l| l.chosen.map_or(l.macs_before, |c| c.macs))
        .sum();
    let report = DecomposeReport {
        budget: opts.budget,
        data: data.source.clone(),
        layers: report_layers,
        macs_before,
        macs_after,
        score: Some(score),
        evaluations: outcome.evaluations,
    };
    cx.journal.notes.extend(report.lines());
    Ok(report)
}

/// The stem for names of what replaces node `n`: its name, else its first output's.
pub(crate) fn base_name(g: &whittle_ir::Graph, n: whittle_ir::NodeId) -> String {
    let node = g.node(n);
    match (node.name(), node.output(0)) {
        (name, _) if !name.is_empty() => name.to_string(),
        (_, Some(v)) => g.value(v).name().to_string(),
        _ => node.op().to_string(),
    }
}

fn rewritten_op(model: &Model, l: &Layer) -> String {
    model.graph.node(l.node).op().to_string()
}

/// Factors `l` by every requested kind that applies and lists its candidate ranks.
fn prepare(
    model: &Model,
    l: Layer,
    s: &stats::LayerStats,
    opts: &Options,
    calibrated: bool,
    cx: &PassCx,
) -> Result<Site, DecomposeError> {
    let w = model
        .graph
        .value(l.w)
        .initializer()
        .map(|t| t.to_f32_vec())
        .transpose()?
        .unwrap_or_default();
    let data = calibrated.then_some(s);
    let mut prepared = Vec::new();
    let mut choices = Vec::new();
    for kind in l.kinds(&opts.kinds) {
        if cx.denies(kind.rule(), &l.site) {
            continue;
        }
        let p = match (&l.shape, kind) {
            (Shape::Conv(c), Kind::Conv) => conv::prepare(c, &w, data, true),
            (Shape::Conv(c), Kind::Spatial) => spatial::prepare(c, &w),
            (Shape::Dense(d), Kind::Gemm) => gemm::prepare(d, &w, data, true),
            _ => continue,
        };
        for rank in search::candidate_ranks(&l, kind, opts) {
            let (macs, params) = l.cost(kind, rank);
            choices.push(Choice {
                kind,
                rank,
                macs,
                params,
                error: match &l.shape {
                    Shape::Conv(c) if kind == Kind::Conv => conv::error(c, &p, rank),
                    _ => p.error(rank),
                },
            });
        }
        prepared.push(p);
    }
    Ok(Site {
        layer: l,
        prepared,
        choices,
    })
}
