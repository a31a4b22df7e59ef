//! The optimizer builder.

use crate::report::{PassReport, Report, Rewrite, size};
use std::path::Path;
use thiserror::Error;
use whittle_ir::{Dim, Model};
use whittle_onnx::{ExportOptions, OnnxError};
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
}

/// Settings for one optimization: level, passes, input shapes, fold limit. Build it with
/// the methods, then call [`Optimizer::optimize_file`], [`Optimizer::optimize_bytes`] or
/// [`Optimizer::optimize_model`].
#[derive(Clone, Debug)]
pub struct Optimizer {
    level: Level,
    passes: Option<Vec<String>>,
    disable: Vec<String>,
    input_shapes: Vec<(String, Vec<Dim>)>,
    fold_limit: u64,
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
        }
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

    /// Largest constant folding may create, in bytes.
    pub fn fold_limit(mut self, bytes: u64) -> Self {
        self.fold_limit = bytes;
        self
    }

    /// A canonical description of the settings (part of [`crate::build`]'s cache key).
    pub fn fingerprint(&self) -> String {
        format!(
            "whittle {} level={:?} passes={:?} disable={:?} shapes={:?} fold_limit={}",
            env!("CARGO_PKG_VERSION"),
            self.level,
            self.passes,
            self.disable,
            self.input_shapes,
            self.fold_limit
        )
    }

    fn pipeline(&self) -> Result<Pipeline, Error> {
        let mut p = match &self.passes {
            Some(names) => Pipeline::with_passes(names).map_err(Error::Config)?,
            None => Pipeline::for_level(self.level),
        };
        p.disable(&self.disable).map_err(Error::Config)?;
        Ok(p)
    }

    /// Optimizes `model` in place.
    pub fn optimize_model(&self, model: &mut Model) -> Result<Report, Error> {
        let (nodes_before, bytes_before) = size(model);
        let mut cx = PassCx {
            input_shapes: self.input_shapes.clone(),
            fold_limit: self.fold_limit,
            ..PassCx::default()
        };
        let stats = self.pipeline()?.run(model, &mut cx)?;
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
        let name = output
            .file_name()
            .map_or_else(|| "model.onnx".into(), |n| n.to_string_lossy().into_owned());
        let opts = ExportOptions {
            external_location: format!("{name}.data"),
            ..ExportOptions::default()
        };
        whittle_onnx::save_model(&model, output, &opts)?;
        Ok(report)
    }
}
