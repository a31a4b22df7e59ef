//! The effective settings of `whittle optimize` for one model: defaults, then the config
//! file (top level, then matching `[model."PATTERN"]` sections), then the flags.

use crate::cli::OptimizeArgs;
use crate::job::{ConfigChoice, Request, VerifyRequest};
use crate::shapes;
use std::collections::BTreeMap;
use std::path::Path;
use whittle::Settings;
use whittle::config::DimSetting;
use whittle_ir::Dim;

/// What the flags say (keys they leave unset come from the config or the defaults).
pub fn from_flags(args: &OptimizeArgs) -> anyhow::Result<Settings> {
    let shapes = shapes::parse_all(&args.inputs.input_shape)?;
    let mut settings = args.settings.to_settings();
    settings.input_shapes = (!shapes.is_empty()).then(|| {
        shapes
            .into_iter()
            .map(|(name, dims)| (name, dims.iter().map(dim_setting).collect()))
            .collect::<BTreeMap<_, _>>()
    });
    Ok(settings)
}

pub fn dim_setting(d: &Dim) -> DimSetting {
    match d {
        Dim::Known(n) => DimSetting::Size(*n),
        Dim::Param(s) => DimSetting::Symbol(s.clone()),
        Dim::Unknown => DimSetting::Symbol("?".into()),
    }
}

/// Which config the flags choose: `--config FILE`, none with `--no-config`, else
/// `whittle.toml` beside the model.
pub fn config_choice(args: &OptimizeArgs) -> ConfigChoice {
    match (&args.config, args.no_config) {
        (_, true) => ConfigChoice::Off,
        (Some(p), false) => ConfigChoice::File(p.clone()),
        (None, false) => ConfigChoice::Beside,
    }
}

/// The settings and optimizer for the model file `model` (see [`crate::job::Resolved`]).
pub fn optimizer_for(args: &OptimizeArgs, model: &Path) -> anyhow::Result<crate::job::Resolved> {
    Ok(whittle::job::resolve(
        &from_flags(args)?,
        &config_choice(args),
        model,
        true,
    )?)
}

/// `--verify` and its inputs and tolerance, as the driver takes them.
pub fn verify_request(args: &OptimizeArgs) -> Option<VerifyRequest> {
    args.verify.as_ref().map(|mode| VerifyRequest {
        strict: mode == "strict",
        inputs: args.inputs.clone(),
        tolerance: args.tolerance.clone(),
    })
}

/// What the flags ask of the driver (the settings, their config, verification).
pub fn request(args: &OptimizeArgs) -> anyhow::Result<Request> {
    Ok(Request {
        flags: from_flags(args)?,
        config: config_choice(args),
        verify: verify_request(args),
        rewrite_limit: args.bisect_limit,
        record_edits: args.certificate.is_some(),
    })
}
