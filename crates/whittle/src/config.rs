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
use std::path::{Path, PathBuf};
use whittle_ir::Dim;

pub use crate::settings::{Settings, keys};

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

impl Settings {
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
        .filter(|(k, _)| crate::settings::is_quantize_key(k))
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

pub(crate) fn one_line(s: &str) -> String {
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
        if let Some(c) = &s.ort_lib
            && c.is_relative()
        {
            s.ort_lib = Some(dir.join(c));
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
