//! The lossy stages of an optimization, run after the lossless passes: decomposition,
//! then quantization — calibrated (int8-static) and held to an error budget when asked.
//! They run outside the fixed-point pipeline because each needs the model as the
//! previous stage left it (ranges and sensitivities are measured on it).

use crate::optimizer::{Error, Optimizer, Quantize, RANDOM_SETS, with_quantize};
use std::path::{Path, PathBuf};
use whittle_eval::Judge;
use whittle_ir::{Model, OpsetImport};
use whittle_passes::cleanup::DeadCode;
use whittle_passes::decompose::{self, Data, DecomposeReport};
use whittle_passes::quant::Int4Format;
use whittle_passes::quant::budget::{self, Fitted};
use whittle_passes::quant::qdq::{self, QuantizeStatic};
use whittle_passes::quant::ranges::{self, Method};
use whittle_passes::{PassCx, PassError, PassStat, Pipeline};

impl Optimizer {
    /// Runs everything the settings ask for on `model` with `cx`: the lossless passes,
    /// then decomposition (if asked), then quantization; `after` sees the model after
    /// each pass. Returns what each pass did and what decomposition did.
    pub fn run(
        &self,
        model: &mut Model,
        cx: &mut PassCx,
        after: &mut dyn FnMut(&str, &Model),
    ) -> Result<(Vec<PassStat>, Option<DecomposeReport>), Error> {
        if let Some(to) = self.opset {
            raise_opset(model, to, "", cx)?;
        }
        prepare_opset(model, self.quantize.as_ref(), cx)?;
        let calibrated = matches!(self.quantize, Some(Quantize::Int8Static { .. }));
        if self.decompose.is_none() && !calibrated && self.quant_budget.is_none() {
            let stats = self.pipeline()?.run_observed(model, cx, after)?;
            declare_domains(model);
            return Ok((stats, None));
        }
        // Lossless first, then factor, then quantize what the factors became.
        let mut stats = self.lossless_pipeline()?.run_observed(model, cx, after)?;
        let data = match self.decompose.is_some() || self.quant_budget.is_some() {
            true => Some(self.lossy_data(model)?),
            false => None,
        };
        // Budgets are held against the model before any lossy step.
        let judge = match (&data, self.quant_budget) {
            (Some(d), Some(_)) => Some(Judge::new(model, &d.sets).map_err(QuantErr::from)?),
            _ => None,
        };
        let mut report = None;
        if let (Some(opts), Some(d)) = (&self.decompose, &data) {
            report = Some(decompose::decompose(model, opts, d, cx)?);
            after("decompose", model);
            merge(
                &mut stats,
                self.lossless_pipeline()?.run_observed(model, cx, after)?,
            );
        }
        if let Some(q) = &self.quantize {
            let quantizer = self.quantizer(model, q)?;
            if let (Some(judge), Some(b), Some(d)) = (&judge, self.quant_budget, &data) {
                let fitted = self.fit_budget(model, judge, b, &quantizer)?;
                cx.deny
                    .extend(fitted.kept.iter().map(|s| ("*".to_string(), s.clone())));
                merge(&mut stats, quantizer().run_observed(model, cx, after)?);
                cx.notes.extend(fitted.notes(&d.source));
            } else {
                merge(&mut stats, quantizer().run_observed(model, cx, after)?);
            }
        }
        declare_domains(model);
        Ok((stats, report))
    }

    /// The quantization passes alone (then dead-code removal), built afresh per run;
    /// int8-static observes its ranges on `model` first.
    fn quantizer(
        &self,
        model: &mut Model,
        q: &Quantize,
    ) -> Result<Box<dyn Fn() -> Pipeline>, Error> {
        let base = || Pipeline::from_passes(vec![Box::new(DeadCode)]);
        Ok(match q {
            Quantize::Int8Static {
                per_channel,
                min_elements,
                method,
                full_range,
            } => {
                let mut pass = self.calibrate_static(model, *min_elements, *method)?;
                pass.per_channel = *per_channel;
                pass.full_range = *full_range;
                Box::new(move || base().with_lossy(Box::new(pass.clone())))
            }
            other => {
                let q = other.clone();
                Box::new(move || with_quantize(base(), &q))
            }
        })
    }

    /// The fewest layers to keep float so that quantizing `model` meets `b`.
    fn fit_budget(
        &self,
        model: &Model,
        judge: &Judge,
        b: whittle_passes::Budget,
        quantizer: &dyn Fn() -> Pipeline,
    ) -> Result<Fitted, Error> {
        let fitted = budget::fit(model, judge, b, |m, excluded| {
            let mut cx = self.pass_cx();
            cx.deny
                .extend(excluded.iter().map(|s| ("*".to_string(), s.clone())));
            quantizer().run(m, &mut cx)?;
            Ok(cx.log.into_iter().map(|(_, _, site)| site).collect())
        })?;
        Ok(fitted)
    }

    /// int8-static: observes the ranges of the values it will quantize on the
    /// calibration data and returns the pass that quantizes with them.
    fn calibrate_static(
        &self,
        model: &mut Model,
        min_elements: u64,
        method: Method,
    ) -> Result<QuantizeStatic, Error> {
        let Some(path) = &self.calibrate else {
            return Err(Error::Config(
                "int8-static needs calibration data (--calibrate PATH)".into(),
            ));
        };
        let data = self.calibration_data(path, model)?;
        let opts = whittle_ir::infer::InferOptions {
            input_shapes: self.input_shapes.clone(),
        };
        let facts = whittle_ir::infer::infer(model, &opts).map_err(PassError::from)?;
        let sites =
            qdq::sites(&model.graph, &facts, min_elements).map_err(|source| PassError::Ir {
                pass: "quantize-int8-static",
                source,
            })?;
        let values = qdq::observed_values(&sites);
        let seen = ranges::observe(model, &values, &data.sets, method)?;
        let ranges = values
            .iter()
            .zip(seen)
            .map(|(v, r)| (model.graph.value(*v).name().to_string(), r))
            .collect();
        Ok(QuantizeStatic {
            ranges,
            per_channel: true,
            min_elements,
            full_range: false,
        })
    }

    /// The data the lossy stages run the model on: the calibration file, else random.
    fn lossy_data(&self, model: &Model) -> Result<Data, Error> {
        let g = &model.graph;
        match &self.calibrate {
            Some(path) => self.calibration_data(path, model),
            None => Ok(Data {
                sets: whittle_eval::random_sets(g, RANDOM_SETS).map_err(|reason| {
                    Error::Calibration {
                        path: PathBuf::from("(random inputs)"),
                        reason,
                    }
                })?,
                calibrated: false,
                source: format!(
                    "random inputs ({RANDOM_SETS} sets; no --calibrate: budget judged on noise)"
                ),
            }),
        }
    }

    /// The calibration sets in `path`, cut to fit the model's inputs.
    fn calibration_data(&self, path: &Path, model: &Model) -> Result<Data, Error> {
        let bad = |reason: String| Error::Calibration {
            path: path.to_path_buf(),
            reason,
        };
        let sets = whittle_eval::calibration_sets(path, &model.graph).map_err(bad)?;
        let samples: i64 = sets
            .iter()
            .filter_map(|s| s.first().and_then(|t| t.dims.first().copied()))
            .sum();
        Ok(Data {
            sets,
            calibrated: true,
            source: format!(
                "calibration data ({samples} samples from {})",
                path.display()
            ),
        })
    }
}

/// int4 as blocked DequantizeLinear needs opset 21: an older model is upgraded first
/// ([`whittle_passes::opset::upgrade`]), or refused naming the node that stops it.
fn prepare_opset(model: &mut Model, q: Option<&Quantize>, cx: &mut PassCx) -> Result<(), Error> {
    let blocked_int4 = matches!(
        q,
        Some(Quantize::Int4 {
            format: Int4Format::DequantizeLinear,
            ..
        })
    );
    if blocked_int4 && model.opset("").unwrap_or(0) < 21 && has_dense(&model.graph) {
        raise_opset(model, 21, " for blocked DequantizeLinear", cx).map_err(|e| {
            Error::Config(format!(
                "int4 as blocked DequantizeLinear needs opset 21: {e} (use --int4-format \
                 matmulnbits)"
            ))
        })?;
    }
    Ok(())
}

/// Raises the model's default-domain opset to `to` (`--opset N`, or what a rewrite needs,
/// named by `why` in the report); lowering is refused.
fn raise_opset(model: &mut Model, to: i64, why: &str, cx: &mut PassCx) -> Result<(), Error> {
    let from = model.opset("").unwrap_or(0);
    if to < from {
        return Err(Error::Config(format!(
            "opset {to}: the model is opset {from} and whittle does not lower opsets"
        )));
    }
    let converted =
        whittle_passes::opset::upgrade(model, to).map_err(|e| Error::Config(e.to_string()))?;
    if to > from {
        cx.notes.push((
            "graph".into(),
            format!("opset {from} -> {to}{why} ({converted} nodes converted)"),
        ));
    }
    Ok(())
}

/// Whether `g` has a MatMul or Gemm, which int4 might take (no upgrade without one).
fn has_dense(g: &whittle_ir::Graph) -> bool {
    g.node_ids()
        .any(|n| matches!(g.node(n).op(), "MatMul" | "Gemm"))
}

/// Adds the opset imports of domains the passes introduced (com.microsoft for
/// MatMulNBits) when the model does not import them yet.
fn declare_domains(model: &mut Model) {
    let used: Vec<String> = model
        .graph
        .node_ids()
        .map(|n| model.graph.node(n).domain().to_string())
        .filter(|d| d == "com.microsoft")
        .collect();
    for d in used {
        if model.opset(&d).is_none() {
            model.opset_imports.push(OpsetImport {
                domain: Some(d),
                version: Some(1),
            });
        }
    }
}

/// Errors of the quantization stage, as the facade reports them.
type QuantErr = whittle_passes::quant::QuantError;

/// Adds what `more` did to `stats` (same pass: counts and times summed).
fn merge(stats: &mut Vec<PassStat>, more: Vec<PassStat>) {
    for s in more {
        match stats.iter_mut().find(|x| x.name == s.name) {
            Some(x) => {
                x.rewrites += s.rewrites;
                x.time += s.time;
            }
            None => stats.push(s),
        }
    }
}
