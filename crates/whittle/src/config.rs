//! Settings from a file: `whittle.toml`, or `[package.metadata.whittle]` in a Cargo.toml.
//!
//! ```toml
//! level = 2                       # 0, 1 or 2
//! disable = ["cse"]
//! fold-limit = 1048576
//! input-shapes = { input_ids = [1, 128] }
//!
//! [model."bert_*.onnx"]           # a glob over the path relative to the config's folder
//! exclude = ["node:/encoder/LayerNorm", "rule:gelu"]
//! ```
//!
//! The top-level keys apply to every model; each `[model."PATTERN"]` section whose
//! pattern matches a model's path (relative to the config file's folder) or its file name
//! overrides them, in the order the sections are written. Command-line flags override
//! both. Unknown keys are errors that list the valid ones.

use crate::Error;
use crate::modes::Quantize;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use whittle_ir::Dim;

/// The keys the optimizer reads itself (top level and model sections).
const GENERAL_KEYS: &[&str] = &[
    "level",
    "passes",
    "disable",
    "input-shapes",
    "fold-limit",
    "external-data-threshold",
    "external-data-name",
    "exclude",
    "enable",
    "decompose",
    "prune",
    "budget",
    "min-gain",
    "measure",
    "calibrate",
    "opset",
];

/// `quantize` and the keys of its modes, read by the mode's option type ([`Quantize`]).
const QUANTIZE_KEYS: &[&str] = &[
    "quantize",
    "per-tensor",
    "min-elements",
    "calibration",
    "full-range",
    "block-size",
    "int4-format",
    "ops",
    "int8-form",
    "act-scale",
];

/// Every key a settings table may hold.
pub fn keys() -> impl Iterator<Item = &'static str> {
    GENERAL_KEYS.iter().chain(QUANTIZE_KEYS).copied()
}

/// One dim of an `input-shapes` entry: a size, a symbol name, or `"?"` (unknown).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum DimSetting {
    Size(i64),
    Symbol(String),
}

impl DimSetting {
    fn to_dim(&self) -> Dim {
        match self {
            DimSetting::Size(n) => Dim::Known(*n),
            DimSetting::Symbol(s) if s == "?" => Dim::Unknown,
            DimSetting::Symbol(s) => Dim::Param(s.clone()),
        }
    }
}

/// Optimization settings; `None` means "not said here" (a later layer or the default
/// decides).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// 0, 1 or 2 (`-O`).
    pub level: Option<u8>,
    /// Exactly these passes instead of the level's.
    pub passes: Option<Vec<String>>,
    /// Passes to skip.
    pub disable: Option<Vec<String>>,
    /// Fixed dims per input name.
    pub input_shapes: Option<BTreeMap<String, Vec<DimSetting>>>,
    /// Largest constant folding may create, in bytes.
    pub fold_limit: Option<u64>,
    /// Store tensors of at least this many bytes in an external data file.
    pub external_data_threshold: Option<u64>,
    /// The file name of the output's external data (default `<output file name>.data`).
    pub external_data_name: Option<String>,
    /// Rewrites not to do: `node:NAME` (none anchored at that node), `op:TYPE` (none at
    /// nodes of that op), `rule:NAME` (that rule nowhere).
    pub exclude: Option<Vec<String>>,
    /// Rewrites that are off by default to do: `rule:NAME` (docs/benchmarks.md says which
    /// fusions are slower in which runtime).
    pub enable: Option<Vec<String>>,
    /// Lossy weight quantization after the lossless passes: `int8-weights`,
    /// `int8-dynamic`, `int8-static` (needs `calibrate`), `int4`, `fp16` or
    /// `fp16-weights`.
    pub quantize: Option<String>,
    /// One scale per tensor instead of per output channel.
    pub per_tensor: Option<bool>,
    /// Weights with fewer elements stay float.
    pub min_elements: Option<u64>,
    /// Layers to factor after the lossless passes: `conv`, `gemm`, `spatial`.
    pub decompose: Option<Vec<String>>,
    /// Channels, neurons to remove after the lossless passes (before decomposition):
    /// `conv`, `dense`, `ffn`.
    pub prune: Option<Vec<String>>,
    /// How much error decomposition (or pruning) may cost: `tol=X`, `cosine=X`, `top1=X` or `exact`.
    pub budget: Option<String>,
    /// A layer is decomposed only when its MACs fall by at least this factor.
    pub min_gain: Option<f64>,
    /// Keep a decomposed layer only if tract also runs it faster.
    pub measure: Option<bool>,
    /// Calibration data (`.npy`, `.npz` or a folder of `test_data_set_N`); in a config
    /// file, relative to the file's folder.
    pub calibrate: Option<PathBuf>,
    /// int8-static: how activation ranges are taken from the calibration data:
    /// `minmax` (default), `percentile[=P]` or `entropy`.
    pub calibration: Option<String>,
    /// int8-static: weights use all of [−127, 127] (else [−64, 64]; see the docs).
    pub full_range: Option<bool>,
    /// int4: rows of K per scale (a power of two ≥ 16; default 32).
    pub block_size: Option<u64>,
    /// int4: `dq` (blocked DequantizeLinear, opset ≥ 21; default) or `matmulnbits`.
    pub int4_format: Option<String>,
    /// int8-dynamic: the op types taken (`MatMul`, `Gemm`, `Conv`; default the first two).
    pub ops: Option<Vec<String>>,
    /// int8-weights: `cast` (Cast → Mul, folded to the float weight at load by ONNX
    /// Runtime and tract; the default) or `dq` (DequantizeLinear).
    pub int8_form: Option<String>,
    /// int8-dynamic: `row` (each row of a MatMul/Gemm activation scaled by its own peak
    /// before quantization; default), `tensor` (one scale per tensor) or `auto` (per
    /// tensor but the layers `budget` needs per row).
    pub act_scale: Option<String>,
    /// Raise the default-domain opset to this version (13–21) before optimizing.
    pub opset: Option<i64>,
}

impl Settings {
    /// These settings with every key that `over` sets replaced by its value.
    pub fn overlay(&self, over: &Settings) -> Settings {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            b.clone().or_else(|| a.clone())
        }
        Settings {
            level: pick(&self.level, &over.level),
            passes: pick(&self.passes, &over.passes),
            disable: pick(&self.disable, &over.disable),
            input_shapes: pick(&self.input_shapes, &over.input_shapes),
            fold_limit: pick(&self.fold_limit, &over.fold_limit),
            external_data_threshold: pick(
                &self.external_data_threshold,
                &over.external_data_threshold,
            ),
            external_data_name: pick(&self.external_data_name, &over.external_data_name),
            exclude: pick(&self.exclude, &over.exclude),
            enable: pick(&self.enable, &over.enable),
            quantize: pick(&self.quantize, &over.quantize),
            per_tensor: pick(&self.per_tensor, &over.per_tensor),
            min_elements: pick(&self.min_elements, &over.min_elements),
            decompose: pick(&self.decompose, &over.decompose),
            prune: pick(&self.prune, &over.prune),
            budget: pick(&self.budget, &over.budget),
            min_gain: pick(&self.min_gain, &over.min_gain),
            measure: pick(&self.measure, &over.measure),
            calibrate: pick(&self.calibrate, &over.calibrate),
            calibration: pick(&self.calibration, &over.calibration),
            full_range: pick(&self.full_range, &over.full_range),
            block_size: pick(&self.block_size, &over.block_size),
            int4_format: pick(&self.int4_format, &over.int4_format),
            ops: pick(&self.ops, &over.ops),
            int8_form: pick(&self.int8_form, &over.int8_form),
            act_scale: pick(&self.act_scale, &over.act_scale),
            opset: pick(&self.opset, &over.opset),
        }
    }

    /// The input shapes as the pass context wants them.
    pub fn input_dims(&self) -> Vec<(String, Vec<Dim>)> {
        self.input_shapes
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.iter().map(DimSetting::to_dim).collect()))
            .collect()
    }

    /// Parses one settings table, naming `file` and `section` in errors.
    fn from_table(table: toml::Table, file: &Path, section: &str) -> Result<Settings, Error> {
        if let Some(key) = table
            .keys()
            .find(|k| !keys().any(|valid| valid == k.as_str()))
        {
            return Err(Error::Config(format!(
                "{}: unknown key `{key}` in {section}; valid keys: {}",
                file.display(),
                keys().collect::<Vec<_>>().join(", ")
            )));
        }
        let s: Settings = toml::Value::Table(table).try_into().map_err(|e| {
            Error::Config(format!(
                "{}: {section}: {}",
                file.display(),
                one_line(&e.to_string())
            ))
        })?;
        if let Some(l) = s.level.filter(|l| *l > 2) {
            return Err(Error::Config(format!(
                "{}: {section}: level {l}: expected 0, 1 or 2",
                file.display()
            )));
        }
        Ok(s)
    }
}

/// The quantize mode and its options that `s` describes: `quantize` and the keys of
/// that mode, read by the mode's option type (so flags and files are read alike, and
/// a key the mode does not take is an error listing those it does).
pub(crate) fn quantize(s: &Settings) -> Result<Option<Quantize>, Error> {
    let table = toml::Table::try_from(s)
        .map_err(|e| Error::Config(format!("settings: {}", one_line(&e.to_string()))))?;
    let mode_keys: toml::Table = table
        .into_iter()
        .filter(|(k, _)| QUANTIZE_KEYS.contains(&k.as_str()))
        .collect();
    let Some(mode) = mode_keys
        .get("quantize")
        .and_then(|m| m.as_str())
        .map(str::to_string)
    else {
        return match mode_keys.keys().next() {
            None => Ok(None),
            Some(k) => Err(Error::Config(format!(
                "{k} applies to quantize; no quantize mode is set"
            ))),
        };
    };
    let q: Quantize = toml::Value::Table(mode_keys)
        .try_into()
        .map_err(|e: toml::de::Error| {
            Error::Config(format!("quantize = \"{mode}\": {}", one_line(e.message())))
        })?;
    q.validate().map_err(Error::Config)?;
    Ok(Some(q))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A loaded config file: top-level settings and per-model sections.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file it came from (its folder anchors model patterns).
    pub path: PathBuf,
    /// Settings for every model.
    pub base: Settings,
    /// `(pattern, settings)` in file order.
    pub models: Vec<(String, Settings)>,
}

impl Config {
    /// The name looked for next to a model.
    pub const FILE_NAME: &'static str = "whittle.toml";

    /// Reads a `whittle.toml`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = read(path)?;
        Config::parse(&text, path, "")
    }

    /// Reads `[package.metadata.whittle]` from a Cargo.toml; `None` when it has none.
    pub fn from_cargo_manifest(path: &Path) -> Result<Option<Config>, Error> {
        let text = read(path)?;
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::Config(format!("{}: {}", path.display(), one_line(&e.to_string())))
        })?;
        let table = doc
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("whittle"));
        match table {
            None => Ok(None),
            Some(toml::Value::Table(t)) => {
                Config::from_table(t.clone(), path, "[package.metadata.whittle]").map(Some)
            }
            Some(_) => Err(Error::Config(format!(
                "{}: package.metadata.whittle must be a table",
                path.display()
            ))),
        }
    }

    /// `whittle.toml` in the model's folder, if there is one.
    pub fn beside(model: &Path) -> Result<Option<Config>, Error> {
        let dir = model
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let candidate = dir.join(Config::FILE_NAME);
        if candidate.is_file() {
            Config::load(&candidate).map(Some)
        } else {
            Ok(None)
        }
    }

    fn parse(text: &str, path: &Path, prefix: &str) -> Result<Config, Error> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::Config(format!("{}: {}", path.display(), one_line(&e.to_string())))
        })?;
        Config::from_table(table, path, prefix)
    }

    fn from_table(mut table: toml::Table, path: &Path, prefix: &str) -> Result<Config, Error> {
        let top = if prefix.is_empty() {
            "the top level"
        } else {
            prefix
        };
        let mut models = Vec::new();
        match table.remove("model") {
            None => {}
            Some(toml::Value::Table(sections)) => {
                for (pattern, v) in sections {
                    let name = format!("{prefix}[model.\"{pattern}\"]");
                    let toml::Value::Table(t) = v else {
                        return Err(Error::Config(format!(
                            "{}: {name} must be a table",
                            path.display()
                        )));
                    };
                    glob::Pattern::new(&pattern).map_err(|e| {
                        Error::Config(format!("{}: {name}: bad pattern: {e}", path.display()))
                    })?;
                    models.push((pattern, Settings::from_table(t, path, &name)?));
                }
            }
            Some(_) => {
                return Err(Error::Config(format!(
                    "{}: `model` must hold [model.\"PATTERN\"] sections",
                    path.display()
                )));
            }
        }
        let base = Settings::from_table(table, path, top).map_err(|e| match e {
            Error::Config(m) if m.contains("unknown key") => {
                Error::Config(m + ", and [model.\"PATTERN\"] sections")
            }
            e => e,
        })?;
        Ok(Config {
            path: path.to_path_buf(),
            base,
            models,
        })
    }

    /// The settings for `model`: the top level, then every matching section in order.
    pub fn settings_for(&self, model: &Path) -> Settings {
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let relative = relative_to(model, dir);
        let file_name = model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut s = self.base.clone();
        for (pattern, section) in &self.models {
            let Ok(p) = glob::Pattern::new(pattern) else {
                continue;
            };
            if p.matches(&relative) || p.matches(&file_name) {
                s = s.overlay(section);
            }
        }
        if let Some(c) = &s.calibrate
            && c.is_relative()
        {
            s.calibrate = Some(dir.join(c));
        }
        s
    }
}

/// `model` relative to `dir` with `/` separators (both made absolute first when they
/// can be); the path as given when it is elsewhere.
fn relative_to(model: &Path, dir: &Path) -> String {
    let abs = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (m, d) = (abs(model), abs(dir));
    let rel = m.strip_prefix(&d).unwrap_or(&m);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("reading config {}: {e}", path.display())))
}
