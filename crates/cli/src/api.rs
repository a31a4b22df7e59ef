//! What the Python package calls: the CLI's own request types and code paths (the job
//! runner for `optimize`, the dump and verify renderers), with errors sorted into the
//! kinds Python raises as exception classes.

use crate::cli::{Cli, Command, InputArgs, ToleranceArgs};
use crate::job::{ConfigChoice, Request, VerifyRequest};
use clap::Parser;
use serde::Deserialize;
use std::path::PathBuf;
use whittle::Settings;
use whittle_onnx::OnnxError;

/// What kind of failure an error is (Python raises a class per kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The settings or arguments are wrong.
    Settings,
    /// The model cannot be read or does not make sense.
    Model,
    /// A file could not be read or written.
    Io,
    /// `verify=strict` (or the lossless check) found changed outputs.
    Verification,
    /// Anything else (a pass failed, tract could not run the model).
    Other,
}

impl Kind {
    /// The name Python maps to an exception class.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Settings => "settings",
            Kind::Model => "model",
            Kind::Io => "io",
            Kind::Verification => "verification",
            Kind::Other => "error",
        }
    }
}

/// The kind of `e`: the first cause in its chain that says.
pub fn classify(e: &anyhow::Error) -> Kind {
    for cause in e.chain() {
        if cause.downcast_ref::<clap::Error>().is_some() {
            return Kind::Settings;
        }
        if let Some(w) = cause.downcast_ref::<whittle::Error>() {
            match w {
                whittle::Error::Config(_)
                | whittle::Error::Calibration { .. }
                | whittle::Error::Runtime(_) => {
                    return Kind::Settings;
                }
                whittle::Error::LosslessCheck(_) | whittle::Error::BudgetMissed(_) => {
                    return Kind::Verification;
                }
                // Transparent: its cause is the OnnxError's own cause, not the error.
                whittle::Error::Onnx(o) => return onnx_kind(o),
                _ => {}
            }
        }
        if let Some(o) = cause.downcast_ref::<OnnxError>() {
            return onnx_kind(o);
        }
        if cause.downcast_ref::<whittle_ir::IrError>().is_some() {
            return Kind::Model;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return Kind::Io;
        }
    }
    Kind::Other
}

fn onnx_kind(e: &OnnxError) -> Kind {
    match e {
        OnnxError::Io { .. } | OnnxError::WouldOverwrite(_) => Kind::Io,
        _ => Kind::Model,
    }
}

/// An `optimize` call from Python, as JSON: the settings (the keys of `whittle.toml`),
/// which config applies, and how to verify.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeSpec {
    /// A settings table, as in `whittle.toml` (kebab-case keys).
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    /// A config file; `false` for none; absent: `whittle.toml` beside a model file.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// `"on"` or `"strict"`.
    #[serde(default)]
    pub verify: Option<String>,
    /// Verification inputs: a `.npy`, `.npz` or `test_data_set_N` folder.
    #[serde(default)]
    pub inputs: Option<PathBuf>,
    #[serde(default)]
    pub runs: Option<usize>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub input_range: Vec<String>,
    #[serde(default)]
    pub rtol: Option<f64>,
    #[serde(default)]
    pub atol: Option<f64>,
    #[serde(default)]
    pub min_cosine: Option<f64>,
    #[serde(default)]
    pub bisect_limit: Option<usize>,
}

/// The driver request for `spec` (a JSON [`OptimizeSpec`]).
pub fn optimize_request(spec: &str) -> anyhow::Result<Request> {
    let spec: OptimizeSpec = serde_json::from_str(spec).map_err(settings_error)?;
    let flags: Settings = match spec.settings.clone() {
        Some(v) => serde_json::from_value(v).map_err(settings_error)?,
        None => Settings::default(),
    };
    let config = match spec.config.clone() {
        None | Some(serde_json::Value::Null) => ConfigChoice::Beside,
        Some(serde_json::Value::Bool(false)) => ConfigChoice::Off,
        Some(serde_json::Value::String(p)) => ConfigChoice::File(p.into()),
        Some(other) => {
            return Err(whittle::Error::Config(format!(
                "config: expected a path or false, got {other}"
            ))
            .into());
        }
    };
    let verify = match spec.verify.as_deref() {
        None => None,
        Some(mode @ ("on" | "strict")) => {
            let (inputs, tolerance) = defaults()?;
            Some(VerifyRequest {
                strict: mode == "strict",
                inputs: input_args(&spec, &flags, inputs),
                tolerance: tolerance_args(&spec, tolerance),
            })
        }
        Some(other) => {
            let msg = format!("verify: expected True, False or \"strict\", got {other:?}");
            return Err(whittle::Error::Config(msg).into());
        }
    };
    Ok(Request {
        flags,
        config,
        verify,
        rewrite_limit: spec.bisect_limit,
        record_edits: false,
    })
}

fn settings_error(e: serde_json::Error) -> anyhow::Error {
    whittle::Error::Config(format!("settings: {e}")).into()
}

/// The CLI's defaults for test inputs and tolerances (what `--verify` alone means),
/// read from clap so they are stated once.
fn defaults() -> anyhow::Result<(InputArgs, ToleranceArgs)> {
    match Cli::try_parse_from(["whittle", "verify", "a", "b"])?.command {
        Command::Verify(v) => Ok((v.inputs, v.tolerance)),
        _ => anyhow::bail!("internal: `whittle verify a b` did not parse as verify"),
    }
}

fn input_args(spec: &OptimizeSpec, flags: &Settings, mut inputs: InputArgs) -> InputArgs {
    inputs.input_shape = flags
        .input_shapes
        .iter()
        .flatten()
        .map(|(name, dims)| {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    whittle::config::DimSetting::Size(n) => n.to_string(),
                    whittle::config::DimSetting::Symbol(s) => s.clone(),
                })
                .collect();
            format!("{name}={}", dims.join(","))
        })
        .collect();
    inputs.input_range = spec.input_range.clone();
    inputs.inputs = spec.inputs.clone();
    inputs.runs = spec.runs.unwrap_or(inputs.runs);
    inputs.seed = spec.seed.unwrap_or(inputs.seed);
    inputs
}

fn tolerance_args(spec: &OptimizeSpec, mut t: ToleranceArgs) -> ToleranceArgs {
    t.rtol = spec.rtol.unwrap_or(t.rtol);
    t.atol = spec.atol.unwrap_or(t.atol);
    t.min_cosine = spec.min_cosine.or(t.min_cosine);
    t
}

/// `whittle dump ARGS…` as text (what the CLI prints).
pub fn dump(args: &[String]) -> anyhow::Result<String> {
    match parse("dump", args)? {
        Command::Dump(dump) => {
            let mut out = crate::cmd::dump_render(&dump, false)?;
            if !out.ends_with('\n') {
                out.push('\n');
            }
            Ok(out)
        }
        _ => anyhow::bail!("internal: not a dump command"),
    }
}

/// `whittle verify ARGS…`: what the CLI prints, and whether the models agree.
pub fn verify(args: &[String]) -> anyhow::Result<(String, bool)> {
    match parse("verify", args)? {
        Command::Verify(verify) => crate::cmd::verify_render(&verify),
        _ => anyhow::bail!("internal: not a verify command"),
    }
}

/// `whittle certify ARGS…`: what the CLI prints, and whether the certificate holds.
pub fn certify(args: &[String]) -> anyhow::Result<(String, bool)> {
    match parse("certify", args)? {
        Command::Certify(c) => crate::cmd::certify_render(&c),
        _ => anyhow::bail!("internal: not a certify command"),
    }
}

/// `whittle tune ARGS… --format json`: the report as JSON (the chosen model written).
pub fn tune(args: &[String]) -> anyhow::Result<String> {
    match parse("tune", args)? {
        Command::Tune(tune) => crate::cmd::tune_render(&tune),
        _ => anyhow::bail!("internal: not a tune command"),
    }
}

fn parse(sub: &str, args: &[String]) -> anyhow::Result<Command> {
    let argv = ["whittle", sub]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned());
    Ok(Cli::try_parse_from(argv)?.command)
}

/// Every key a settings table may hold (the Python keywords, with `_` for `-`).
pub fn setting_keys() -> Vec<&'static str> {
    whittle::config::keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each failure Python must tell apart lands in its own kind.
    #[test]
    fn errors_are_classified_by_their_first_known_cause() {
        let config: anyhow::Error = whittle::Error::Config("no pass 'x'".into()).into();
        assert_eq!(classify(&config), Kind::Settings);
        let strict: anyhow::Error = whittle::Error::BudgetMissed("misses budget".into()).into();
        assert_eq!(
            classify(&strict.context("optimizing m.onnx")),
            Kind::Verification
        );
        let io = OnnxError::io("m.onnx", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(classify(&anyhow::Error::from(io)), Kind::Io);
        let decode = OnnxError::Empty {
            path: "m.onnx".into(),
        };
        assert_eq!(classify(&anyhow::Error::from(decode)), Kind::Model);
        assert_eq!(classify(&anyhow::anyhow!("something else")), Kind::Other);
        // Through the library's error (the job returns whittle::Error).
        let refused = whittle::Error::from(OnnxError::WouldOverwrite("taken".into()));
        assert_eq!(classify(&anyhow::Error::from(refused)), Kind::Io);
        let garbage = whittle::Error::from(OnnxError::Empty {
            path: "m.onnx".into(),
        });
        assert_eq!(classify(&anyhow::Error::from(garbage)), Kind::Model);
        assert!(
            optimize_request(r#"{"settings": {"levle": 2}}"#)
                .is_err_and(|e| classify(&e) == Kind::Settings)
        );
    }

    /// A spec's settings are `whittle.toml` keys; `--verify` alone means the CLI defaults.
    #[test]
    fn a_spec_becomes_the_request_the_flags_make() -> anyhow::Result<()> {
        let spec = r#"{"settings": {"level": 1, "input-shapes": {"x": [1, "n"]}}, "verify": "on", "config": false}"#;
        let req = optimize_request(spec)?;
        assert_eq!(req.flags.level, Some(1));
        assert!(matches!(req.config, ConfigChoice::Off));
        let v = req.verify.as_ref().expect("verify");
        assert!(!v.strict);
        assert_eq!(v.inputs.input_shape, vec!["x=1,n".to_string()]);
        assert_eq!((v.inputs.runs, v.tolerance.rtol), (3, 1e-4));
        Ok(())
    }
}
