//! Certificates of lossless rewrites, and the checker that judges them.
//!
//! `whittle optimize --certificate` records, for every rewrite of the lossless pipeline,
//! the region it changed: the nodes before and after as [`record::NodeRec`]s and the
//! initializers by digest ([`record::Region`]). [`certify`] replays those regions on the
//! original model ([`replay`]): each must find exactly what it says it removed, and the
//! end must be exactly the optimized model. Each rewrite then gets a [`Verdict`]: proved
//! exact by its rule's lemma ([`lemma`], checked here with the checker's own arithmetic),
//! checked by evaluating the region before and after in a runtime ([`Evaluator`], given
//! by the caller), or not certified, with the reason.
//!
//! The checker shares no code with the passes it checks: it reads two models and a JSON
//! file, and its only link to whittle's rewriting is the record format.

pub mod components;
pub mod folded;
pub mod lemma;
pub mod record;
pub mod replay;
pub mod symbolic;

use components::Component;
use record::{Certificate, Rewrite};
use replay::ModelState;
use serde::Serialize;
use thiserror::Error;
use whittle_ir::Model;

/// What the checker concluded about one rewrite.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Its rule's lemma holds on the recorded nodes: equal for every input.
    ProvedExact { lemma: String },
    /// Its rule's identity holds over the reals and the constants it wrote are the exact
    /// values within a stated fp32 rounding bound.
    ProvedWithinBound { lemma: String },
    /// The region before and after gave the same outputs in an independent runtime.
    CheckedByEvaluation {
        runtime: String,
        max_abs: f64,
        with: Vec<usize>,
    },
    /// A lossy step: outside proof; what it measured.
    Lossy { measured: String },
    /// Neither: why not.
    NotCertified { reason: String },
}

/// A rewrite the checker refuses: the optimized model is not what the certificate says.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Rejection {
    /// 1-based rewrite number (0: the model as a whole).
    pub rewrite: usize,
    pub rule: String,
    pub site: String,
    pub why: String,
}

/// The checker's answer.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Report {
    pub verdicts: Vec<(usize, String, String, Verdict)>,
    pub rejected: Option<Rejection>,
    /// True when the replay reached the end and matched the optimized model.
    pub replayed: bool,
}

impl Report {
    /// Counts of rewrites proved exact, proved within an fp32 bound, checked by
    /// evaluation, lossy and not certified.
    pub fn counts(&self) -> [usize; 5] {
        let mut c = [0; 5];
        for (_, _, _, v) in &self.verdicts {
            c[match v {
                Verdict::ProvedExact { .. } => 0,
                Verdict::ProvedWithinBound { .. } => 1,
                Verdict::CheckedByEvaluation { .. } => 2,
                Verdict::Lossy { .. } => 3,
                Verdict::NotCertified { .. } => 4,
            }] += 1;
        }
        c
    }
}

/// How a region's outputs compared before and after.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Compared {
    /// Largest |before - after| over the outputs.
    pub max_abs: f64,
    /// Whether every element is within [`ATOL`] + [`RTOL`] * the output's largest |before|.
    pub within: bool,
}

/// Evaluates a component's region before (nodes of the original) and after (nodes of
/// the optimized model) on the same inputs.
pub trait Evaluator {
    /// The runtime, as the verdict names it.
    fn name(&self) -> String;
    /// Sees every component before the first `compare` (to compute what they read in
    /// one run).
    fn prepare(&self, _components: &[Component]) {}
    /// How the outputs compared, or why the region could not be evaluated.
    fn compare(&self, component: &Component) -> Result<Compared, String>;
}

/// Why the checker could not run at all.
#[derive(Debug, Error)]
pub enum CertifyError {
    #[error("certificate format {0} is not one this checker reads (it reads {1})")]
    Format(u32, u32),
}

/// A region's outputs agree when |a - b| <= ATOL + RTOL * max|b| over each output (fp32
/// rounding of a reassociated sum is bounded relative to its terms, not its result).
pub const ATOL: f64 = 1e-5;
/// See [`ATOL`].
pub const RTOL: f64 = 1e-4;

/// Replays `cert` on `original`, compares the result with `optimized` and judges every
/// rewrite; `evaluator` (if any) checks the regions no lemma covers.
pub fn certify(
    original: &Model,
    optimized: &Model,
    cert: &Certificate,
    evaluator: Option<&dyn Evaluator>,
) -> Result<Report, CertifyError> {
    if cert.format != record::FORMAT {
        return Err(CertifyError::Format(cert.format, record::FORMAT));
    }
    let mut report = Report::default();
    let mut state = ModelState::of(original);
    let last = ModelState::of(optimized);
    let first_inits = all_inits(&state);
    // The rewrites replayed are those before the first without a region (a lossy step's).
    let upto = cert
        .rewrites
        .iter()
        .position(|rw| rw.region.is_none())
        .unwrap_or(cert.rewrites.len());
    let comps = components::of(&cert.rewrites[..upto]);
    let mut scoped = InState::new(original, cert, &comps);
    let mut store = state.tensors.clone();
    store.extend(last.tensors.iter().map(|(k, t)| (k.clone(), t.clone())));
    let mut lemmas: Vec<Option<Verdict>> = vec![None; cert.rewrites.len()];
    for (k, rw) in cert.rewrites[..upto].iter().enumerate() {
        let Some(region) = &rw.region else {
            break;
        };
        scoped.before(k, region, &state);
        match step(&mut state, rw, region, &mut store) {
            Ok(lemma) => lemmas[k] = lemma,
            Err(why) => {
                report.rejected = Some(reject(k, rw, why));
                return Ok(report);
            }
        }
        scoped.after(k, region, &state, &store, &mut lemmas);
    }
    if upto == cert.rewrites.len() {
        let diff = state.differences(&last, 5);
        if let Some((key, _)) = diff.first() {
            let why = format!(
                "the optimized model is not the original with the logged rewrites: {}",
                diff.iter()
                    .map(|d| d.1.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            report.rejected = Some(match last_touching(&cert.rewrites, key) {
                Some(k) => reject(k, &cert.rewrites[k], why),
                None => Rejection {
                    rewrite: 0,
                    rule: String::new(),
                    site: String::new(),
                    why,
                },
            });
            return Ok(report);
        }
        report.replayed = true;
    }
    let inits = (first_inits, all_inits(&last));
    prove_symbolically(original, optimized, cert, &comps, &inits, &mut lemmas);
    if let Some(e) = evaluator {
        let open: Vec<Component> = comps
            .iter()
            .filter(|c| c.members.iter().any(|k| lemmas[*k].is_none()))
            .cloned()
            .collect();
        e.prepare(&open);
    }
    judge(&mut report, cert, &lemmas, &comps, upto, evaluator);
    Ok(report)
}

/// Proves by symbolic evaluation the components no lemma proved (none with a lossy
/// member): each proved rewrite gets its verdict in `lemmas`. `inits` are the main
/// graphs' initializer records, original and optimized.
fn prove_symbolically(
    original: &Model,
    optimized: &Model,
    cert: &Certificate,
    comps: &[Component],
    inits: &(symbolic::Inits, symbolic::Inits),
    lemmas: &mut [Option<Verdict>],
) {
    let lossy = |k: &usize| cert.rewrites[*k].region.as_ref().is_some_and(|r| r.lossy);
    let open = |c: &Component, lemmas: &[Option<Verdict>]| {
        !c.members.iter().any(lossy) && c.members.iter().any(|k| lemmas[*k].is_none())
    };
    if !comps.iter().any(|c| open(c, lemmas)) {
        return;
    }
    let mut prover = symbolic::Prover::new(original, &inits.0, optimized, &inits.1);
    for c in comps {
        if !open(c, lemmas) {
            continue;
        }
        if let Some(n) = prover.prove(c) {
            for k in &c.members {
                lemmas[*k].get_or_insert_with(|| symbolic_verdict(n));
            }
        }
    }
}

/// Every graph's initializer records, by scope.
fn all_inits(state: &ModelState) -> symbolic::Inits {
    state
        .scopes
        .iter()
        .map(|(k, g)| (k.clone(), g.inits.clone()))
        .collect()
}

/// The verdict of a region proved by symbolic evaluation, handing on `n` values.
fn symbolic_verdict(n: usize) -> Verdict {
    Verdict::ProvedExact {
        lemma: format!(
            "symbolic evaluation: the region after hands on the same {n} term(s) as before, \
             for every input whose open dims are at least 1"
        ),
    }
}

/// Applies one region with its lemma's checks around it: the verdict its lemma gives, if
/// any (Err: the lemma is refuted, or the region does not apply).
fn step(
    state: &mut ModelState,
    rw: &Rewrite,
    region: &record::Region,
    store: &mut folded::Store,
) -> Result<Option<Verdict>, String> {
    let folds = ["conv-batchnorm", "conv-add-mul", "conv-input-scale"];
    if folds.contains(&rw.rule.as_str()) && !region.lossy {
        let outcome = match state.scopes.get(&region.scope) {
            Some(g) if rw.rule == "conv-input-scale" => folded::conv_input_scale(region, g, store)?,
            Some(g) => folded::conv_affine(&rw.rule, region, g, store)?,
            None => folded::Outcome::Inconclusive,
        };
        state.apply(region)?;
        return Ok(match outcome {
            folded::Outcome::Proved(lemma) => Some(Verdict::ProvedWithinBound { lemma }),
            folded::Outcome::Inconclusive => None,
        });
    }
    let lemma = lemma::lemma_of(&rw.rule);
    let before = state.scopes.get(&region.scope);
    let forward = match (&lemma, before) {
        (Some(_), Some(g)) => Some(lemma::check_before(&rw.rule, region, g)?),
        _ => None,
    };
    state.apply(region)?;
    if let (Some(l), Some(fwd), Some(after)) = (&lemma, forward, state.scopes.get(&region.scope)) {
        lemma::check_after(&rw.rule, region, after, &fwd)?;
        return Ok(Some(Verdict::ProvedExact {
            lemma: format!("{}: {}", l.name, l.statement),
        }));
    }
    Ok(None)
}

/// Groups of rewrites inside subgraphs, proved on the replay's state (the files may no
/// longer hold their subgraph under the path they were made in): the graphs on the
/// path are kept before the group's first rewrite, and the group is judged after its
/// last.
struct InState {
    comps: Vec<Component>,
    cx: symbolic::state::Context,
    snapshots: std::collections::HashMap<usize, symbolic::state::Chain>,
    /// The path's graphs before the current rewrite, when it is in a subgraph.
    this: Option<symbolic::state::Chain>,
}

impl InState {
    fn new(original: &Model, cert: &Certificate, comps: &[Component]) -> InState {
        let lossy = |k: &usize| cert.rewrites[*k].region.as_ref().is_some_and(|r| r.lossy);
        let comps = comps
            .iter()
            .filter(|c| !c.scope.is_empty() && !c.members.iter().any(lossy))
            .cloned()
            .collect();
        let g = &original.graph;
        let input_types = g
            .inputs()
            .iter()
            .filter_map(|v| Some((g.value(*v).name().to_string(), g.value(*v).info.ty.clone()?)))
            .collect();
        InState {
            comps,
            cx: symbolic::state::Context {
                input_types,
                opset: original.opset("").unwrap_or(1),
            },
            snapshots: Default::default(),
            this: None,
        }
    }

    /// Keeps the path's graphs of rewrite `k` (in a subgraph, with region `region`) and
    /// of every group whose first rewrite is `k`.
    fn before(&mut self, k: usize, region: &record::Region, state: &ModelState) {
        let chain = |scope: &[String]| -> symbolic::state::Chain {
            (0..=scope.len())
                .filter_map(|d| Some((scope[..d].to_vec(), state.scopes.get(&scope[..d])?.clone())))
                .collect()
        };
        self.this = (!region.scope.is_empty() && !region.lossy).then(|| chain(&region.scope));
        for (i, c) in self.comps.iter().enumerate() {
            if c.members.first() == Some(&k) {
                self.snapshots.insert(i, chain(&c.scope));
            }
        }
    }

    /// Rewrite `k` alone, as a group of one.
    fn single(
        &mut self,
        k: usize,
        region: &record::Region,
        state: &ModelState,
        store: &folded::Store,
    ) -> Option<usize> {
        let chain = self.this.take()?;
        let after = state.scopes.get(&region.scope)?;
        let c = Component {
            members: vec![k],
            scope: region.scope.clone(),
            before: region.removed.iter().map(|r| r.key()).collect(),
            after: region.added.iter().map(|r| r.key()).collect(),
            ..Component::default()
        };
        symbolic::state::prove_component(&chain, after, &c, store, &self.cx)
    }

    /// Judges every group whose last rewrite is `k`: its members without a verdict are
    /// proved exact when the group is.
    fn after(
        &mut self,
        k: usize,
        region: &record::Region,
        state: &ModelState,
        store: &folded::Store,
        lemmas: &mut [Option<Verdict>],
    ) {
        if lemmas[k].is_none() {
            lemmas[k] = self.single(k, region, state, store).map(symbolic_verdict);
        }
        for (i, c) in self.comps.iter().enumerate() {
            if c.members.last() != Some(&k) || c.members.iter().all(|m| lemmas[*m].is_some()) {
                continue;
            }
            let (Some(chain), Some(after)) =
                (self.snapshots.remove(&i), state.scopes.get(&c.scope))
            else {
                continue;
            };
            if let Some(n) = symbolic::state::prove_component(&chain, after, c, store, &self.cx) {
                for m in &c.members {
                    lemmas[*m].get_or_insert_with(|| symbolic_verdict(n));
                }
            }
        }
    }
}

/// The last rewrite whose region added or removed the node (by key) or initializer
/// (by name) `key`: the one a difference there is charged to.
fn last_touching(rewrites: &[Rewrite], key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    rewrites.iter().rposition(|rw| {
        rw.region.as_ref().is_some_and(|r| {
            let nodes = r.added.iter().chain(&r.removed);
            let inits = r.inits_added.iter().chain(&r.inits_removed);
            nodes.map(|n| n.key()).any(|k| k == key) || inits.map(|t| &t.name).any(|n| n == key)
        })
    })
}

fn reject(k: usize, rw: &Rewrite, why: String) -> Rejection {
    Rejection {
        rewrite: k + 1,
        rule: rw.rule.clone(),
        site: rw.site.clone(),
        why,
    }
}

/// Gives every rewrite its verdict.
fn judge(
    report: &mut Report,
    cert: &Certificate,
    lemmas: &[Option<Verdict>],
    comps: &[Component],
    replayed_upto: usize,
    evaluator: Option<&dyn Evaluator>,
) {
    let mut by_rewrite: Vec<Option<Verdict>> = vec![None; cert.rewrites.len()];
    let lossy = |k: &usize| cert.rewrites[*k].region.as_ref().is_some_and(|r| r.lossy);
    for c in comps {
        if c.members.iter().all(|k| lemmas[*k].is_some() || lossy(k)) {
            continue;
        }
        let shared = c.members.iter().any(lossy).then(|| Verdict::NotCertified {
            reason: "its region is shared with a lossy step's, which changes the values".into(),
        });
        let v = match shared.map(Ok).unwrap_or_else(|| evaluate(c, evaluator)) {
            Ok(v) => v,
            Err(max_abs) => {
                let k = c.members[0];
                report.rejected = Some(reject(
                    k,
                    &cert.rewrites[k],
                    format!(
                        "the region before and after differs by up to {max_abs:.3e} in {} \
                         (rewrites {})",
                        evaluator.map(|e| e.name()).unwrap_or_default(),
                        c.members
                            .iter()
                            .map(|m| (m + 1).to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                return;
            }
        };
        for k in &c.members {
            by_rewrite[*k] = Some(v.clone());
        }
    }
    for (k, rw) in cert.rewrites.iter().enumerate() {
        let v = if lossy(&k) {
            lossy_verdict(cert, rw)
        } else if let Some(proved) = &lemmas[k] {
            proved.clone()
        } else if k >= replayed_upto {
            outside_replay(cert, rw)
        } else {
            by_rewrite[k].clone().unwrap_or(Verdict::NotCertified {
                reason: "no lemma and no evaluation".into(),
            })
        };
        report
            .verdicts
            .push((k + 1, rw.rule.clone(), rw.site.clone(), v));
    }
}

/// The verdict of a component from its evaluation; Err(max abs) when the outputs differ.
fn evaluate(c: &Component, evaluator: Option<&dyn Evaluator>) -> Result<Verdict, f64> {
    let Some(e) = evaluator else {
        return Ok(Verdict::NotCertified {
            reason: "no lemma or symbolic proof, and regions were not evaluated (--no-evaluate)"
                .into(),
        });
    };
    if !c.scope.is_empty() {
        return Ok(Verdict::NotCertified {
            reason: "no lemma or symbolic proof (its subgraph was renamed or inlined since, or the terms differ); regions inside subgraphs are not evaluated".into(),
        });
    }
    let folded = c.rules.iter().any(|r| r == "fold-constants");
    if folded && e.name() == "tract" {
        return Ok(Verdict::NotCertified {
            reason: "tract folded these constants, so tract cannot judge them again: \
                     a second evaluator is needed (--runtime ort)"
                .into(),
        });
    }
    match e.compare(c) {
        Ok(d) if d.within => Ok(Verdict::CheckedByEvaluation {
            runtime: e.name(),
            max_abs: d.max_abs,
            with: c.members.iter().map(|k| k + 1).collect(),
        }),
        Ok(d) => Err(d.max_abs),
        Err(why) => Ok(Verdict::NotCertified {
            reason: format!("no lemma or symbolic proof; evaluation failed: {why}"),
        }),
    }
}

/// A lossy step's rewrite: outside proof, with what was measured at its site.
fn lossy_verdict(cert: &Certificate, rw: &Rewrite) -> Verdict {
    let measured = cert
        .lossy
        .iter()
        .filter(|l| l.site == rw.site)
        .map(|l| l.measured.clone())
        .collect::<Vec<_>>()
        .join("; ");
    Verdict::Lossy {
        measured: if measured.is_empty() {
            "judged as a whole by the run's budget".into()
        } else {
            measured
        },
    }
}

/// A rewrite after the first one without a region (a lossy step's): not replayed.
fn outside_replay(cert: &Certificate, rw: &Rewrite) -> Verdict {
    if rw.region.is_none() {
        return lossy_verdict(cert, rw);
    }
    Verdict::NotCertified {
        reason: "after a lossy step: the lossy phase changes the graph outside proof, so \
                 the replay stops there"
            .into(),
    }
}

/// Without a certificate: translation validation by structure. Nodes with equal records
/// in both models are proved unchanged; what differs in each graph is one region,
/// evaluated before and after (main graph) or named as not proved (subgraphs).
pub fn without_certificate(
    original: &Model,
    optimized: &Model,
    evaluator: Option<&dyn Evaluator>,
) -> Report {
    let (a, b) = (ModelState::of(original), ModelState::of(optimized));
    let mut report = Report::default();
    let (regions, same) = changed_regions(&a, &b);
    report.verdicts.push((
        1,
        "unchanged".into(),
        format!("{same} nodes"),
        Verdict::ProvedExact {
            lemma: "structural equality: same op, attributes and inputs by name".into(),
        },
    ));
    let (ia, ib) = (all_inits(&a), all_inits(&b));
    let mut prover = symbolic::Prover::new(original, &ia, optimized, &ib);
    let proved: Vec<Option<usize>> = regions.iter().map(|c| prover.prove(c)).collect();
    if let Some(e) = evaluator {
        let open: Vec<Component> = regions
            .iter()
            .zip(&proved)
            .filter(|(_, p)| p.is_none())
            .map(|(c, _)| c.clone())
            .collect();
        e.prepare(&open);
    }
    for (i, c) in regions.iter().enumerate() {
        let site = format!(
            "{}{} nodes before, {} after",
            match c.scope.is_empty() {
                true => String::new(),
                false => format!("{}: ", c.scope.join(" / ")),
            },
            c.before.len(),
            c.after.len()
        );
        let v = match proved[i].map(symbolic_verdict).map(Ok) {
            Some(v) => v,
            None => evaluate(c, evaluator),
        };
        let v = match v {
            Ok(v) => v,
            Err(max_abs) => {
                report.rejected = Some(Rejection {
                    rewrite: 0,
                    rule: "changed region".into(),
                    site,
                    why: format!("the models differ by up to {max_abs:.3e} in the region"),
                });
                return report;
            }
        };
        report
            .verdicts
            .push((i + 2, "changed region".into(), site, v));
    }
    report.replayed = true;
    report
}

/// Each graph's differing part as one region (nodes whose records differ, before and
/// after), and the number of nodes equal in both.
fn changed_regions(a: &ModelState, b: &ModelState) -> (Vec<Component>, usize) {
    let mut regions: Vec<Component> = Vec::new();
    let mut same = 0usize;
    let empty = replay::GraphState::default();
    let scopes: std::collections::BTreeSet<&Vec<String>> =
        a.scopes.keys().chain(b.scopes.keys()).collect();
    for scope in scopes {
        let ga = a.scopes.get(scope).unwrap_or(&empty);
        let gb = b.scopes.get(scope).unwrap_or(&empty);
        let mut c = Component {
            scope: scope.clone(),
            ..Component::default()
        };
        for (k, r) in &ga.nodes {
            match gb.nodes.get(k) {
                Some(o) if o == r => same += 1,
                _ => {
                    c.before.insert(k.clone());
                }
            }
        }
        c.after = gb
            .nodes
            .iter()
            .filter(|(k, r)| ga.nodes.get(*k) != Some(*r))
            .map(|(k, _)| k.clone())
            .collect();
        let inits_differ = ga.inits != gb.inits || ga.outputs != gb.outputs;
        if !c.before.is_empty() || !c.after.is_empty() || inits_differ {
            regions.push(c);
        }
    }
    (regions, same)
}
