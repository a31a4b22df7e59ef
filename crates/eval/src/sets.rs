//! Running one model over many input sets without reloading it for every shape.
//!
//! tract optimizes a model for the input shapes it is given, which for a 90 MB encoder
//! costs far more than a run. Sets of one shape share a load; sets of many shapes
//! (sentences of their own lengths) share one load with the differing dims symbolic.
//! ONNX Runtime takes any shape: one session serves every set.

use crate::run::EvalError;
use crate::runtime::{Runner, Runtime};
use std::collections::HashSet;
use whittle_ir::{Model, Tensor};

/// Above this many distinct input shapes, the model is loaded once with symbolic dims.
const SHAPES_PER_LOAD: usize = 2;

/// A model ready to run on each of a list of input sets.
pub(crate) struct SetRunner<'a> {
    runtime: &'a Runtime,
    model: &'a Model,
    label: &'a str,
    /// One load for every shape, when there are many.
    shared: Option<Runner>,
    /// The load for the last shape seen.
    last: Option<(Vec<Vec<i64>>, Runner)>,
}

impl<'a> SetRunner<'a> {
    /// Prepares `model` for `sets`; when tract cannot load it with symbolic dims, it is
    /// loaded per shape instead (the error is logged). ONNX Runtime loads it on first run.
    pub(crate) fn new(
        runtime: &'a Runtime,
        model: &'a Model,
        label: &'a str,
        sets: &[Vec<Tensor>],
    ) -> SetRunner<'a> {
        let shapes: HashSet<Vec<&[i64]>> = sets
            .iter()
            .map(|s| s.iter().map(|t| &t.dims[..]).collect())
            .collect();
        let shared = if shapes.len() > SHAPES_PER_LOAD && !runtime.any_shape() {
            Runner::for_sets(runtime, model, label, sets)
                .inspect_err(|e| tracing::debug!("one load per shape instead: {e}"))
                .ok()
        } else {
            None
        };
        SetRunner {
            runtime,
            model,
            label,
            shared,
            last: None,
        }
    }

    /// The name of the runtime the sets run in.
    pub(crate) fn runtime_name(&self) -> &'static str {
        self.runtime.name()
    }

    /// The outputs of the model on `set`.
    pub(crate) fn run(&mut self, set: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        if self.shared.is_none() && self.runtime.any_shape() {
            self.shared = Some(Runner::new(self.runtime, self.model, self.label, set)?);
        }
        if let Some(r) = &self.shared {
            return r.run(set);
        }
        let shapes: Vec<Vec<i64>> = set.iter().map(|t| t.dims.clone()).collect();
        let runner = match self.last.take() {
            Some((s, r)) if s == shapes => self.last.insert((s, r)),
            _ => self.last.insert((
                shapes,
                Runner::new(self.runtime, self.model, self.label, set)?,
            )),
        };
        runner.1.run(set)
    }
}
