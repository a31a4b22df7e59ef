//! The optimizer builder.

use crate::config::Settings;
use crate::report::{PassReport, Report, Rewrite, size};
use std::path::{Path, PathBuf};
use thiserror::Error;
use whittle_ir::{Dim, Model};
use whittle_onnx::{ExportOptions, OnnxError};
use whittle_passes::decompose::{self, Budget, Kind};
use whittle_passes::quant::dynamic::{DENSE_OPS, DYNAMIC_OPS};
use whittle_passes::quant::ranges::Method;
use whittle_passes::quant::{
    ActScale, DynamicInt8, Fp16Compute, Fp16Weights, Int4Format, QuantError, QuantizeInt4,
    QuantizeWeights,
};
use whittle_passes::{DEFAULT_FOLD_LIMIT, Level, PassCx, PassError, Pipeline};

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
    /// Calibrated quantization failed (the model is left as the lossless passes made it).
    #[error(transparent)]
    Quantize(#[from] QuantError),
    /// Calibration data could not be read or does not fit the model.
    #[error("calibration data {path}: {reason}")]
    Calibration { path: PathBuf, reason: String },
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
    pub(crate) external_data_threshold: Option<u64>,
    pub(crate) quantize: Option<Quantize>,
    pub(crate) decompose: Option<decompose::Options>,
    pub(crate) calibrate: Option<PathBuf>,
    /// Quantization held to this whole-model budget (layers kept float until it holds).
    pub(crate) quant_budget: Option<Budget>,
    /// Raise the default-domain opset to this version first.
    pub(crate) opset: Option<i64>,
}

/// Random input sets the decomposition runs on when no calibration data is given.
pub(crate) const RANDOM_SETS: usize = 16;

/// Lossy compression run after the lossless passes (opt-in; it reports its error).
#[derive(Clone, Debug, PartialEq)]
pub enum Quantize {
    /// Weights stored as int8 behind DequantizeLinear; compute stays float.
    Int8Weights {
        /// One scale per output channel (else one per tensor).
        per_channel: bool,
        /// `Cast → Mul` instead of DequantizeLinear (`--int8-form cast`).
        cast: bool,
        /// Weights with fewer elements stay float.
        min_elements: u64,
    },
    /// MatMul/Gemm in int8 with activations quantized at run time.
    Int8Dynamic {
        /// Weights with fewer elements stay float.
        min_elements: u64,
        /// Weights use all of [−127, 127] (else [−64, 64], which no x86 kernel saturates).
        full_range: bool,
        /// The op types taken (MatMul, Gemm; Conv as ConvInteger).
        ops: Vec<String>,
        /// One activation scale per row (default) or per tensor.
        act_scale: ActScale,
    },
    /// Conv/MatMul/Gemm in the QDQ format: activations quantized with ranges observed on
    /// the calibration data (required), weights int8, biases int32.
    Int8Static {
        /// One weight scale per output channel (else one per tensor).
        per_channel: bool,
        /// Weights with fewer elements stay float.
        min_elements: u64,
        /// How each activation's range is chosen from what calibration saw.
        method: Method,
        /// Weights use all of [−127, 127] (else [−64, 64], which no x86 kernel saturates).
        full_range: bool,
    },
    /// The model computes in float16; float32 inputs and outputs are kept.
    Fp16,
    /// MatMul/Gemm weights in 4 bits, one scale per block of K rows per column.
    Int4 {
        /// Rows per block (a power of two, at least 16).
        block_size: usize,
        /// Blocked DequantizeLinear (opset ≥ 21) or com.microsoft MatMulNBits.
        format: Int4Format,
        /// Weights with fewer elements stay float.
        min_elements: u64,
    },
    /// Weights stored as float16 behind a Cast to float32.
    Fp16Weights {
        /// Weights with fewer elements stay float32.
        min_elements: u64,
    },
}

impl Quantize {
    /// The modes `--quantize` accepts.
    pub const MODES: &'static [&'static str] = &[
        "int8-weights",
        "int8-dynamic",
        "int8-static",
        "fp16-weights",
    ];

    /// `int8-weights` with the default options (per channel, 1024 elements and more).
    pub fn int8_weights() -> Quantize {
        Quantize::Int8Weights {
            per_channel: true,
            min_elements: 1024,
            cast: false,
        }
    }
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
            external_data_threshold: None,
            quantize: None,
            decompose: None,
            calibrate: None,
            quant_budget: None,
            opset: None,
        }
    }

    /// Decompose layers after the lossless passes (before any quantization).
    pub fn decompose(mut self, opts: decompose::Options) -> Self {
        self.decompose = Some(opts);
        self
    }

    /// Calibration data for decomposition: `.npy`, `.npz` or `test_data_set_N` folders.
    pub fn calibrate(mut self, path: &Path) -> Self {
        self.calibrate = Some(path.to_path_buf());
        self
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
        o.opset = settings.opset;
        for e in settings.exclude.iter().flatten() {
            o = o.try_exclude(e)?;
        }
        o.quantize = match settings.quantize.as_deref() {
            None => None,
            Some("int8-weights") => Some(Quantize::Int8Weights {
                per_channel: !settings.per_tensor.unwrap_or(false),
                cast: match settings.int8_form.as_deref() {
                    None | Some("dq") => false,
                    Some("cast") => true,
                    Some(f) => {
                        return Err(Error::Config(format!(
                            "int8-form '{f}': expected dq or cast"
                        )));
                    }
                },
                min_elements: settings.min_elements.unwrap_or(1024),
            }),
            Some("int8-static") => Some(Quantize::Int8Static {
                per_channel: !settings.per_tensor.unwrap_or(false),
                min_elements: settings.min_elements.unwrap_or(0),
                method: match &settings.calibration {
                    Some(m) => m.parse().map_err(Error::Config)?,
                    None => Method::MinMax,
                },
                full_range: settings.full_range.unwrap_or(false),
            }),
            Some("fp16") if settings.per_tensor.is_some() || settings.min_elements.is_some() => {
                return Err(Error::Config(
                    "per-tensor and min-elements do not apply to fp16 (every value converts)"
                        .into(),
                ));
            }
            Some("fp16") => Some(Quantize::Fp16),
            Some("int4") if settings.per_tensor.is_some() => {
                return Err(Error::Config(
                    "per-tensor does not apply to int4 (it is blockwise)".into(),
                ));
            }
            Some("int4") => Some(Quantize::Int4 {
                block_size: int4_block_size(settings.block_size)?,
                format: match settings.int4_format.as_deref() {
                    None | Some("dq") => Int4Format::DequantizeLinear,
                    Some("matmulnbits") => Int4Format::MatMulNBits,
                    Some(f) => {
                        return Err(Error::Config(format!(
                            "int4-format '{f}': expected dq or matmulnbits"
                        )));
                    }
                },
                min_elements: settings.min_elements.unwrap_or(1024),
            }),
            Some(m @ ("fp16-weights" | "int8-dynamic")) if settings.per_tensor.is_some() => {
                return Err(Error::Config(format!(
                    "per-tensor applies to int8-weights, not {m}"
                )));
            }
            Some("int8-dynamic") => Some(Quantize::Int8Dynamic {
                min_elements: settings.min_elements.unwrap_or(1024),
                full_range: settings.full_range.unwrap_or(false),
                ops: dynamic_ops(settings.ops.as_deref())?,
                act_scale: match &settings.act_scale {
                    Some(s) => s.parse().map_err(Error::Config)?,
                    None => ActScale::default(),
                },
            }),
            Some("fp16-weights") => Some(Quantize::Fp16Weights {
                min_elements: settings.min_elements.unwrap_or(1024),
            }),
            Some(m) => {
                return Err(Error::Config(format!(
                    "quantize '{m}': expected one of {}",
                    Quantize::MODES.join(", ")
                )));
            }
        };
        if o.quantize.is_none()
            && (settings.per_tensor.is_some() || settings.min_elements.is_some())
        {
            return Err(Error::Config(
                "per-tensor and min-elements apply to quantize; no quantize mode is set".into(),
            ));
        }
        if settings.calibration.is_some()
            && !matches!(o.quantize, Some(Quantize::Int8Static { .. }))
        {
            return Err(Error::Config(
                "calibration (the range method) applies to quantize = int8-static".into(),
            ));
        }
        if settings.int8_form.is_some() && !matches!(o.quantize, Some(Quantize::Int8Weights { .. }))
        {
            return Err(Error::Config(
                "int8-form applies to quantize = int8-weights".into(),
            ));
        }
        if (settings.ops.is_some() || settings.act_scale.is_some())
            && !matches!(o.quantize, Some(Quantize::Int8Dynamic { .. }))
        {
            return Err(Error::Config(
                "ops and act-scale apply to quantize = int8-dynamic".into(),
            ));
        }
        if (settings.block_size.is_some() || settings.int4_format.is_some())
            && !matches!(o.quantize, Some(Quantize::Int4 { .. }))
        {
            return Err(Error::Config(
                "block-size and int4-format apply to quantize = int4".into(),
            ));
        }
        if settings.full_range.is_some()
            && !matches!(
                o.quantize,
                Some(Quantize::Int8Static { .. } | Quantize::Int8Dynamic { .. })
            )
        {
            return Err(Error::Config(
                "full-range applies to quantize = int8-static or int8-dynamic".into(),
            ));
        }
        o.decompose = decompose_settings(settings)?;
        o.quant_budget = quant_budget(settings, o.quantize.as_ref())?;
        o.calibrate = settings.calibrate.clone();
        o.pipeline()?; // unknown pass names fail here, not mid-run
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

    /// Largest constant folding may create, in bytes.
    pub fn fold_limit(mut self, bytes: u64) -> Self {
        self.fold_limit = bytes;
        self
    }

    /// A canonical description of the settings (part of [`crate::build`]'s cache key).
    pub fn fingerprint(&self) -> String {
        format!(
            "whittle {} level={:?} passes={:?} disable={:?} shapes={:?} fold_limit={} \
             exclude={:?} {:?} external={:?} quantize={:?} decompose={:?} calibrate={:?} \
             opset={:?}",
            env!("CARGO_PKG_VERSION"),
            self.level,
            self.passes,
            self.disable,
            self.input_shapes,
            self.fold_limit,
            self.exclude,
            self.exclude_ops,
            self.external_data_threshold,
            self.quantize,
            self.decompose,
            self.calibrate,
            self.opset
        )
    }

    /// The passes these settings run (for tools that drive the pipeline themselves).
    pub fn pipeline(&self) -> Result<Pipeline, Error> {
        let p = self.lossless_pipeline()?;
        Ok(match &self.quantize {
            None => p,
            Some(q) => with_quantize(p, q),
        })
    }

    /// The passes these settings run, without quantization.
    pub(crate) fn lossless_pipeline(&self) -> Result<Pipeline, Error> {
        let mut p = match &self.passes {
            Some(names) => Pipeline::with_passes(names).map_err(Error::Config)?,
            None => Pipeline::for_level(self.level),
        };
        p.disable(&self.disable).map_err(Error::Config)?;
        Ok(p)
    }

    /// A fresh pass context with these settings (input shapes, fold limit, exclusions).
    pub fn pass_cx(&self) -> PassCx {
        PassCx {
            input_shapes: self.input_shapes.clone(),
            fold_limit: self.fold_limit,
            deny: self.exclude.clone(),
            deny_ops: self.exclude_ops.clone(),
            ..PassCx::default()
        }
    }

    /// The export settings for writing to `output`: external data goes to
    /// `<file name>.data` beside it.
    pub fn export_options(&self, output: &Path) -> ExportOptions {
        let name = output
            .file_name()
            .map_or_else(|| "model.onnx".into(), |n| n.to_string_lossy().into_owned());
        ExportOptions {
            external_threshold: self.external_data_threshold,
            external_location: format!("{name}.data"),
            ..ExportOptions::default()
        }
    }

    /// True when the settings include a lossy decomposition (it runs outside the
    /// pipeline, so tools that drive the pipeline themselves must call [`Optimizer::run`]).
    pub fn decomposes(&self) -> bool {
        self.decompose.is_some()
    }

    /// Optimizes `model` in place.
    pub fn optimize_model(&self, model: &mut Model) -> Result<Report, Error> {
        let (nodes_before, bytes_before) = size(model);
        let mut cx = self.pass_cx();
        let (stats, decomposed) = self.run(model, &mut cx, &mut |_, _| {})?;
        let (nodes_after, bytes_after) = size(model);
        Ok(Report {
            nodes_before,
            nodes_after,
            initializer_bytes_before: bytes_before,
            initializer_bytes_after: bytes_after,
            passes: stats
                .iter()
                .map(|s| PassReport {
                    name: s.name,
                    rewrites: s.rewrites,
                })
                .collect(),
            rewrites: cx
                .log
                .into_iter()
                .map(|(pass, rule, node)| Rewrite { pass, rule, node })
                .collect(),
            notes: cx.notes,
            decompose: decomposed,
        })
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
    /// any, goes to `<output file name>.data` beside it).
    pub fn optimize_file(&self, input: &Path, output: &Path) -> Result<Report, Error> {
        let mut model = whittle_onnx::read_model(input)?;
        let report = self.optimize_model(&mut model)?;
        whittle_onnx::save_model(&model, output, &self.export_options(output))?;
        Ok(report)
    }
}

/// `p` with the passes of quantization mode `q` before its final clean-up.
pub(crate) fn with_quantize(p: Pipeline, q: &Quantize) -> Pipeline {
    match q {
        Quantize::Int8Weights {
            per_channel,
            min_elements,
            cast,
        } => p.with_lossy(Box::new(QuantizeWeights {
            per_channel: *per_channel,
            min_elements: *min_elements,
            cast: *cast,
            ..QuantizeWeights::default()
        })),
        Quantize::Fp16 => p.with_lossy(Box::new(Fp16Compute)),
        Quantize::Int4 {
            block_size,
            format,
            min_elements,
        } => p
            .with_lossy(Box::new(QuantizeInt4 {
                block_size: *block_size,
                format: *format,
                min_elements: *min_elements,
            }))
            // Embedding tables are not MatMuls: store them as int8 rows.
            .with_lossy(Box::new(QuantizeWeights {
                min_elements: *min_elements,
                ops: &["Gather"],
                ..QuantizeWeights::default()
            })),
        Quantize::Fp16Weights { min_elements } => p.with_lossy(Box::new(Fp16Weights {
            min_elements: *min_elements,
        })),
        // Calibrated: run by Optimizer::run once the lossless passes are done.
        Quantize::Int8Static { .. } => p,
        // Embedding tables are not MatMuls: store them as int8 rows (int8-weights).
        Quantize::Int8Dynamic {
            min_elements,
            full_range,
            ops,
            act_scale,
        } => p
            .with_lossy(Box::new(DynamicInt8 {
                min_elements: *min_elements,
                full_range: *full_range,
                ops: ops.clone(),
                act_scale: *act_scale,
            }))
            .with_lossy(Box::new(QuantizeWeights {
                min_elements: *min_elements,
                ops: &["Gather"],
                ..QuantizeWeights::default()
            })),
    }
}

/// `ops` for int8-dynamic: MatMul, Gemm and Conv (default MatMul and Gemm).
fn dynamic_ops(ops: Option<&[String]>) -> Result<Vec<String>, Error> {
    let Some(ops) = ops else {
        return Ok(DENSE_OPS.iter().map(|s| s.to_string()).collect());
    };
    for op in ops {
        if !DYNAMIC_OPS.contains(&op.as_str()) {
            return Err(Error::Config(format!(
                "ops '{op}': int8-dynamic takes {}",
                DYNAMIC_OPS.join(", ")
            )));
        }
    }
    Ok(ops.to_vec())
}

/// `block-size` for int4: a power of two, at least 16 (default 32).
fn int4_block_size(b: Option<u64>) -> Result<usize, Error> {
    match b {
        None => Ok(32),
        Some(b) if b >= 16 && b.is_power_of_two() && b <= 1 << 20 => Ok(b as usize),
        Some(b) => Err(Error::Config(format!(
            "block-size {b}: expected a power of two, at least 16"
        ))),
    }
}

/// The budget quantization is held to: `cosine=X` or `top1=X` when a quantize mode is
/// set (with decompose too, the same budget holds for the model both leave). `tol` and
/// `exact` are decomposition budgets.
fn quant_budget(
    s: &crate::config::Settings,
    q: Option<&Quantize>,
) -> Result<Option<Budget>, Error> {
    let (Some(text), Some(q)) = (&s.budget, q) else {
        return Ok(None);
    };
    let b = text.parse::<Budget>().map_err(Error::Config)?;
    match (b, q) {
        (Budget::Cosine(_) | Budget::Top1(_), _) => Ok(Some(b)),
        _ if s.decompose.is_some() => Ok(None),
        _ => Err(Error::Config(format!(
            "budget {b}: quantization takes cosine=X or top1=X"
        ))),
    }
}

/// The decomposition the settings ask for, if any; errors name the bad value.
fn decompose_settings(s: &crate::config::Settings) -> Result<Option<decompose::Options>, Error> {
    let Some(names) = &s.decompose else {
        if s.min_gain.is_some() || s.measure.is_some() {
            return Err(Error::Config(
                "min-gain and measure apply to decompose; no decompose kind is set".into(),
            ));
        }
        if s.budget.is_some() && s.quantize.is_none() {
            return Err(Error::Config(
                "budget applies to decompose and quantize; neither is set".into(),
            ));
        }
        return Ok(None);
    };
    let kinds = names
        .iter()
        .map(|n| {
            Kind::parse(n).ok_or_else(|| {
                Error::Config(format!(
                    "decompose '{n}': expected one of {}",
                    Kind::NAMES.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let defaults = decompose::Options::default();
    let budget = match &s.budget {
        Some(b) => b.parse::<Budget>().map_err(Error::Config)?,
        None => defaults.budget,
    };
    let min_gain = s.min_gain.unwrap_or(defaults.min_gain);
    if !(min_gain.is_finite() && min_gain > 0.0) {
        return Err(Error::Config(format!(
            "min-gain {min_gain}: expected a positive number"
        )));
    }
    Ok(Some(decompose::Options {
        kinds,
        budget,
        min_gain,
        measure: s.measure.unwrap_or(false),
    }))
}
