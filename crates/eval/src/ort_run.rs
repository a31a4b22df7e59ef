//! Whole-model runs in ONNX Runtime, in process (the library loaded by [`crate::load_ort`]).
//! A session takes inputs of any shape its model admits, so one session serves every
//! input set.

use crate::ort_lib::OrtLib;
use crate::run::{EvalError, prepared};
use ort::memory::Allocator;
use ort::session::{Session, SessionInputValue, builder::GraphOptimizationLevel};
use ort::value::{
    DynMapValueType, DynSequenceValueType, DynTensor, DynTensorValueType, DynValue,
    TensorElementType, ValueType,
};
use std::sync::Mutex;
use whittle_ir::{DataType, Model, Tensor};

/// A model loaded into an ONNX Runtime session.
pub(crate) struct OrtRunner {
    session: Mutex<Session>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    label: String,
}

const RUNTIME: &str = "ONNX Runtime";

impl OrtRunner {
    /// Loads `model` with `threads` intra-op threads (None: ONNX Runtime's default, one
    /// per core) and, when `optimized`, ONNX Runtime's graph optimizations as a deployment
    /// gets them (its own fusions and folding); without, the graph runs as written.
    pub(crate) fn new(
        lib: &OrtLib,
        model: &Model,
        label: &str,
        (threads, optimized): (Option<usize>, bool),
    ) -> Result<OrtRunner, EvalError> {
        let load_err = |reason: String| EvalError::Load {
            runtime: RUNTIME,
            model: label.to_string(),
            reason,
        };
        let bytes =
            whittle_onnx::encode_model(&prepared(model)).map_err(|e| load_err(e.to_string()))?;
        let mut builder = Session::builder(&lib.env)
            .and_then(|b| {
                b.with_optimization_level(match optimized {
                    true => GraphOptimizationLevel::All,
                    false => GraphOptimizationLevel::Disable,
                })
                .map_err(Into::into)
            })
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .map_err(|e| load_err(e.to_string()))?;
        if let Some(n) = threads {
            builder = builder
                .with_intra_threads(n)
                .map_err(|e| load_err(e.to_string()))?;
        }
        let session = builder
            .commit_from_memory(&bytes)
            .map_err(|e| load_err(e.to_string()))?;
        let inputs = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        let outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(OrtRunner {
            session: Mutex::new(session),
            inputs,
            outputs,
            label: label.to_string(),
        })
    }

    /// Runs on `inputs` (one per graph input, in order) and returns the outputs in order.
    pub(crate) fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        let run_err = |reason: String| EvalError::Run {
            runtime: RUNTIME,
            model: self.label.clone(),
            reason,
        };
        let mut feeds: Vec<(String, SessionInputValue<'_>)> = Vec::new();
        for (name, t) in self.inputs.iter().zip(inputs) {
            feeds.push((name.clone(), to_ort(t)?.into()));
        }
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outs = session.run(feeds).map_err(|e| run_err(e.to_string()))?;
        self.outputs
            .iter()
            .map(|name| {
                let v = outs
                    .get(name)
                    .ok_or_else(|| run_err(format!("output '{name}' missing")))?;
                from_ort(name, v).map_err(&run_err)
            })
            .collect()
    }
}

/// A sequence of int64 → float maps as a float tensor [maps, keys] (keys sorted; every
/// map must have the same keys).
fn maps_as_tensor(name: &str, v: &DynValue) -> Result<Tensor, String> {
    let bad = |e: String| format!("output '{name}' (a sequence of maps): {e}");
    let seq = v
        .view()
        .downcast::<DynSequenceValueType>()
        .map_err(|e| bad(e.to_string()))?;
    let maps = seq
        .try_extract_sequence::<DynMapValueType>()
        .map_err(|e| bad(e.to_string()))?;
    let mut keys: Option<Vec<i64>> = None;
    let mut values = Vec::new();
    for m in &maps {
        let mut kv = m
            .try_extract_key_values::<i64, f32>()
            .map_err(|e| bad(e.to_string()))?;
        kv.sort_by_key(|(k, _)| *k);
        let ks: Vec<i64> = kv.iter().map(|(k, _)| *k).collect();
        if keys.get_or_insert_with(|| ks.clone()) != &ks {
            return Err(bad("maps with different keys".into()));
        }
        values.extend(kv.into_iter().map(|(_, x)| x));
    }
    let cols = keys.map_or(0, |k| k.len()) as i64;
    let mut out = Tensor::from_f32(vec![maps.len() as i64, cols], &values);
    out.name = Some(name.to_string());
    Ok(out)
}

/// ONNX Runtime's element type for ours (None: not supported as a runtime value here).
fn element(dt: DataType) -> Option<TensorElementType> {
    Some(match dt {
        DataType::Float => TensorElementType::Float32,
        DataType::Double => TensorElementType::Float64,
        DataType::Float16 => TensorElementType::Float16,
        DataType::Bfloat16 => TensorElementType::Bfloat16,
        DataType::Int8 => TensorElementType::Int8,
        DataType::Int16 => TensorElementType::Int16,
        DataType::Int32 => TensorElementType::Int32,
        DataType::Int64 => TensorElementType::Int64,
        DataType::Uint8 => TensorElementType::Uint8,
        DataType::Uint16 => TensorElementType::Uint16,
        DataType::Uint32 => TensorElementType::Uint32,
        DataType::Uint64 => TensorElementType::Uint64,
        DataType::Bool => TensorElementType::Bool,
        _ => return None,
    })
}

fn data_type(e: TensorElementType) -> Option<DataType> {
    [
        DataType::Float,
        DataType::Double,
        DataType::Float16,
        DataType::Bfloat16,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Bool,
    ]
    .into_iter()
    .find(|d| element(*d) == Some(e))
}

/// Copies an IR tensor into a new ONNX Runtime tensor.
fn to_ort(t: &Tensor) -> Result<DynTensor, EvalError> {
    let bad = |reason: String| EvalError::Input {
        input: t.name().to_string(),
        reason,
    };
    let ty = element(t.dtype()).ok_or_else(|| {
        bad(format!(
            "element type {} is not supported for inputs",
            t.dtype()
        ))
    })?;
    let bytes = t.le_bytes().map_err(|e| bad(e.to_string()))?;
    let shape: Vec<i64> = t.dims.clone();
    let mut v = DynTensor::new(&Allocator::default(), ty, shape).map_err(|e| bad(e.to_string()))?;
    if !bytes.is_empty() {
        // SAFETY: the tensor was allocated on the CPU for dims × element size bytes, which
        // `le_bytes` checked is exactly `bytes.len()`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.data_ptr_mut().cast(), bytes.len())
        };
    }
    Ok(v)
}

/// Copies an ONNX Runtime output into an IR tensor named `name`. A sequence of maps
/// with int64 keys and float values (what ai.onnx.ml ZipMap makes of class
/// probabilities) becomes a float tensor [maps, keys], its columns in key order.
fn from_ort(name: &str, v: &DynValue) -> Result<Tensor, String> {
    let (ty, shape) = match v.dtype() {
        ValueType::Tensor { ty, shape, .. } => (*ty, shape.to_vec()),
        ValueType::Sequence(inner) if matches!(**inner, ValueType::Map { .. }) => {
            return maps_as_tensor(name, v);
        }
        other => return Err(format!("output '{name}' is a {other:?}, not a tensor")),
    };
    let dtype = data_type(ty)
        .ok_or_else(|| format!("output '{name}' has type {ty:?}, not compared yet"))?;
    let count: usize = shape.iter().map(|d| *d.max(&0) as usize).product();
    let len = ty
        .byte_size(count)
        .ok_or_else(|| format!("output '{name}': no byte size for {ty:?}"))?;
    let tensor = v
        .view()
        .downcast::<DynTensorValueType>()
        .map_err(|e| format!("output '{name}': {e}"))?;
    let mut bytes = vec![0u8; len];
    if len > 0 {
        // SAFETY: a CPU tensor of `count` elements of `ty` holds `len` readable bytes.
        unsafe { std::ptr::copy_nonoverlapping(tensor.data_ptr().cast(), bytes.as_mut_ptr(), len) };
    }
    let mut out = Tensor::from_raw(dtype, shape, bytes::Bytes::from(bytes));
    out.name = Some(name.to_string());
    Ok(out)
}
