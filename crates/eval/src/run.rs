//! Whole-model runs in tract (the embedded runtime: needs nothing installed).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use thiserror::Error;
use tract_onnx::prelude::*;
use whittle_ir::{DataType, Model, Tensor, Type, TypeKind};

/// A runtime (tract or ONNX Runtime) could not load or run a model.
#[derive(Debug, Error)]
pub enum EvalError {
    #[error("{model}: {runtime} cannot load the model: {reason}")]
    Load {
        runtime: &'static str,
        model: String,
        reason: String,
    },
    #[error("{model}: {runtime} failed to run the model: {reason}")]
    Run {
        runtime: &'static str,
        model: String,
        reason: String,
    },
    #[error("input '{input}': {reason}")]
    Input { input: String, reason: String },
    #[error("{model}: tract panicked: {reason}")]
    Panic { model: String, reason: String },
    #[error("{0}")]
    Runtime(#[from] crate::ort_lib::OrtLibError),
}

/// The name tract goes by in messages.
pub(crate) const TRACT: &str = "tract";

fn to_tract(t: &Tensor) -> Result<tract_onnx::prelude::Tensor, EvalError> {
    let bad = |reason: String| EvalError::Input {
        input: t.name().to_string(),
        reason,
    };
    let dt = match t.dtype() {
        DataType::Float => f32::datum_type(),
        DataType::Double => f64::datum_type(),
        DataType::Int64 => i64::datum_type(),
        DataType::Int32 => i32::datum_type(),
        DataType::Int8 => i8::datum_type(),
        DataType::Uint8 => u8::datum_type(),
        DataType::Bool => bool::datum_type(),
        other => {
            return Err(bad(format!(
                "element type {other} is not supported for inputs"
            )));
        }
    };
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|d| usize::try_from(*d).unwrap_or(0))
        .collect();
    let bytes = t.le_bytes().map_err(|e| bad(e.to_string()))?;
    // SAFETY: `le_bytes` checked that the byte count matches dims × element size.
    unsafe { tract_onnx::prelude::Tensor::from_raw_dt(dt, &shape, &bytes) }
        .map_err(|e| bad(e.to_string()))
}

fn from_tract(name: &str, t: &tract_onnx::prelude::Tensor) -> Result<Tensor, String> {
    // Shape computations may come back as symbolic dims; concrete ones are plain i64.
    if t.datum_type() == DatumType::TDim {
        let i = t
            .cast_to_dt(DatumType::I64)
            .map_err(|e| format!("output '{name}': {e}"))?;
        return from_tract(name, &i);
    }
    let dims: Vec<i64> = t.shape().iter().map(|d| *d as i64).collect();
    let dtype = match t.datum_type() {
        DatumType::F32 => DataType::Float,
        DatumType::F64 => DataType::Double,
        DatumType::I64 => DataType::Int64,
        DatumType::I32 => DataType::Int32,
        DatumType::I8 => DataType::Int8,
        DatumType::U8 => DataType::Uint8,
        DatumType::Bool => DataType::Bool,
        other => {
            return Err(format!(
                "output '{name}' has type {other:?}, not compared yet"
            ));
        }
    };
    let bytes = t.as_bytes().to_vec();
    let mut out = Tensor::from_raw(dtype, dims, bytes::Bytes::from(bytes));
    out.name = Some(name.to_string());
    Ok(out)
}

/// Runs the model at `path` in tract; see [`run_model`].
pub fn run_model_file(path: &Path, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let model = whittle_onnx::read_model(path).map_err(|e| EvalError::Load {
        runtime: TRACT,
        model: path.display().to_string(),
        reason: e.to_string(),
    })?;
    run_model(&model, &path.display().to_string(), inputs)
}

/// Runs `model` in tract on `inputs` (one per graph input, in order; their shapes fix
/// the symbolic dims) and returns the outputs in order. `label` names the model in errors.
///
/// tract sees a copy prepared for evaluation: `value_info` dropped and output shapes
/// relaxed (tract applies declarations as constraints, and exporters' symbolic
/// annotations are not always right), external data inlined, inputs pinned to the fed
/// shapes. What is computed is unchanged. tract panics are caught.
pub fn run_model(model: &Model, label: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    TractRunner::new(model, label, inputs)?.run(inputs)
}

/// A model loaded and optimized by tract for inputs of fixed shapes, ready to run many
/// times (benchmarks, repeated verification).
pub(crate) struct TractRunner {
    plan: std::sync::Arc<TypedRunnableModel>,
    names: Vec<String>,
    label: String,
}

/// The message of a caught panic.
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

impl TractRunner {
    /// Loads `model` in tract with its inputs pinned to the shapes and types of `example`.
    pub(crate) fn new(
        model: &Model,
        label: &str,
        example: &[Tensor],
    ) -> Result<TractRunner, EvalError> {
        let pins = example
            .iter()
            .map(|t| {
                let dims = t.dims.iter().map(|d| Pin::Size(*d)).collect();
                to_tract(t).map(|t| (t.datum_type(), dims))
            })
            .collect::<Result<_, _>>()?;
        TractRunner::pinned(model, label, pins)
    }

    /// Loads `model` once for every set of `sets` (one tensor per graph input each): a
    /// dim is pinned where all sets agree and left symbolic where they differ, one
    /// symbol per pattern of sizes across the sets (so inputs that share a sequence
    /// length share a symbol).
    pub(crate) fn for_sets(
        model: &Model,
        label: &str,
        sets: &[Vec<Tensor>],
    ) -> Result<TractRunner, EvalError> {
        let first = sets.first().ok_or_else(|| EvalError::Load {
            runtime: TRACT,
            model: label.to_string(),
            reason: "no input sets".into(),
        })?;
        let mut symbols: Vec<Vec<i64>> = Vec::new();
        let mut pins = Vec::new();
        for (k, t) in first.iter().enumerate() {
            let mut dims = Vec::new();
            for (a, d) in t.dims.iter().enumerate() {
                let sizes: Vec<i64> = sets
                    .iter()
                    .map(|s| s.get(k).and_then(|t| t.dims.get(a)).copied().unwrap_or(-1))
                    .collect();
                if sizes.iter().all(|x| x == d) {
                    dims.push(Pin::Size(*d));
                    continue;
                }
                let i = match symbols.iter().position(|s| *s == sizes) {
                    Some(i) => i,
                    None => {
                        symbols.push(sizes);
                        symbols.len() - 1
                    }
                };
                dims.push(Pin::Symbol(format!("whittle_dim_{i}")));
            }
            pins.push((to_tract(t)?.datum_type(), dims));
        }
        TractRunner::pinned(model, label, pins)
    }

    fn pinned(
        model: &Model,
        label: &str,
        pins: Vec<(DatumType, Vec<Pin>)>,
    ) -> Result<TractRunner, EvalError> {
        let load_err = |reason: String| EvalError::Load {
            runtime: TRACT,
            model: label.to_string(),
            reason,
        };
        let bytes =
            whittle_onnx::encode_model(&prepared(model)).map_err(|e| load_err(e.to_string()))?;
        let loaded = catch_unwind(AssertUnwindSafe(|| load(&bytes, pins)));
        match loaded {
            Ok(Ok((plan, names))) => Ok(TractRunner {
                plan,
                names,
                label: label.to_string(),
            }),
            Ok(Err(reason)) => Err(load_err(reason)),
            Err(p) => Err(EvalError::Panic {
                model: label.to_string(),
                reason: panic_text(p),
            }),
        }
    }

    /// Runs on `inputs` (one per graph input, in order) and returns the outputs in order.
    pub(crate) fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        let feeds = inputs.iter().map(to_tract).collect::<Result<Vec<_>, _>>()?;
        let model = self.label.clone();
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.plan
                .run(feeds.into_iter().map(|t| t.into_tvalue()).collect())
                .map_err(|e| format!("{e:#}"))
        }));
        let outs = match result {
            Ok(Ok(o)) => o,
            Ok(Err(reason)) => {
                return Err(EvalError::Run {
                    runtime: TRACT,
                    model,
                    reason,
                });
            }
            Err(p) => {
                return Err(EvalError::Panic {
                    model,
                    reason: panic_text(p),
                });
            }
        };
        outs.iter()
            .zip(self.names.iter().chain(std::iter::repeat(&String::new())))
            .map(|(t, n)| {
                from_tract(n, t).map_err(|reason| EvalError::Run {
                    runtime: TRACT,
                    model: model.clone(),
                    reason,
                })
            })
            .collect()
    }
}

/// The copy of `model` that a runtime is given (see [`run_model`]); nodes get unique
/// names.
pub(crate) fn prepared(model: &Model) -> Model {
    let mut m = model.clone();
    let g = &mut m.graph;
    g.retain_value_info(|_, _| false);
    g.shadow_infos.clear();
    for v in g.outputs().to_vec() {
        if let Some(Type {
            kind: TypeKind::Tensor { shape, .. },
            ..
        }) = g.value_mut(v).info.ty.as_mut()
        {
            *shape = None;
        }
    }
    name_nodes(g, &mut std::collections::HashSet::new(), &mut 0);
    for v in g.initializers().to_vec() {
        if let Some(t) = g.initializer_mut(v)
            && let Some(bytes) = t.external_bytes.take()
        {
            t.data.raw = Some(bytes);
            t.data_location = None;
            t.external_data.clear();
        }
    }
    m
}

/// Gives every node (subgraphs included) a unique name: tract wants them; ONNX allows
/// them empty or repeated.
fn name_nodes(
    g: &mut whittle_ir::Graph,
    seen: &mut std::collections::HashSet<String>,
    k: &mut usize,
) {
    let ids: Vec<_> = g.node_ids().collect();
    for n in ids {
        let name = g.node(n).name.clone().unwrap_or_default();
        if name.is_empty() || !seen.insert(name) {
            let fresh = loop {
                *k += 1;
                let f = format!("whittle_node_{k}");
                if seen.insert(f.clone()) {
                    break f;
                }
            };
            g.node_mut(n).name = Some(fresh);
        }
        for a in g.node_mut(n).attributes.iter_mut() {
            for sub in a.subgraphs_mut() {
                name_nodes(sub, seen, k);
            }
        }
    }
}

/// One dim of an input as tract is told it.
enum Pin {
    Size(i64),
    Symbol(String),
}

/// Loads, pins and optimizes the model; returns the runnable plan and output names.
fn load(
    bytes: &[u8],
    pins: Vec<(DatumType, Vec<Pin>)>,
) -> Result<(std::sync::Arc<TypedRunnableModel>, Vec<String>), String> {
    let e = |e: TractError| format!("{e:#}");
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .map_err(e)?;
    for (i, (dt, dims)) in pins.into_iter().enumerate() {
        let shape: TVec<TDim> = dims
            .iter()
            .map(|d| match d {
                Pin::Size(n) => TDim::from(*n),
                Pin::Symbol(s) => TDim::from(model.symbols.sym(s)),
            })
            .collect();
        model
            .set_input_fact(i, InferenceFact::dt_shape(dt, shape))
            .map_err(e)?;
    }
    let names: Vec<String> = model
        .output_outlets()
        .map_err(e)?
        .iter()
        .map(|o| model.outlet_label(*o).unwrap_or("").to_string())
        .collect();
    let plan = model
        .into_optimized()
        .map_err(e)?
        .into_runnable()
        .map_err(e)?;
    Ok((plan, names))
}
