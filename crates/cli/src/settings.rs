//! The effective settings of `whittle optimize` for one model: defaults, then the config
//! file (top level, then matching `[model."PATTERN"]` sections), then the flags.

use crate::cli::OptimizeArgs;
use crate::job::{ConfigChoice, VerifyRequest};
use crate::shapes;
use std::collections::BTreeMap;
use std::path::Path;
use whittle::Settings;
use whittle::config::DimSetting;
use whittle_ir::Dim;

/// What the flags say (keys they leave unset come from the config or the defaults).
pub fn from_flags(a: &OptimizeArgs) -> anyhow::Result<Settings> {
    let shapes = shapes::parse_all(&a.inputs.input_shape)?;
    let mut settings = a.settings.to_settings();
    settings.input_shapes = (!shapes.is_empty()).then(|| {
        shapes
            .into_iter()
            .map(|(name, dims)| (name, dims.iter().map(dim_setting).collect()))
            .collect::<BTreeMap<_, _>>()
    });
    Ok(settings)
}

fn dim_setting(d: &Dim) -> DimSetting {
    match d {
        Dim::Known(n) => DimSetting::Size(*n),
        Dim::Param(s) => DimSetting::Symbol(s.clone()),
        Dim::Unknown => DimSetting::Symbol("?".into()),
    }
}

/// Which config the flags choose: `--config FILE`, none with `--no-config`, else
/// `whittle.toml` beside the model.
pub fn config_choice(a: &OptimizeArgs) -> ConfigChoice {
    match (&a.config, a.no_config) {
        (_, true) => ConfigChoice::Off,
        (Some(p), false) => ConfigChoice::File(p.clone()),
        (None, false) => ConfigChoice::Beside,
    }
}

/// The settings and optimizer for the model file `model` (see [`crate::job::Resolved`]).
pub fn optimizer_for(a: &OptimizeArgs, model: &Path) -> anyhow::Result<crate::job::Resolved> {
    crate::job::optimizer_for(&from_flags(a)?, &config_choice(a), model, true)
}

/// `--verify` and its inputs and tolerance, as the driver takes them.
pub fn verify_request(a: &OptimizeArgs) -> Option<VerifyRequest> {
    a.verify.as_ref().map(|mode| VerifyRequest {
        strict: mode == "strict",
        inputs: a.inputs.clone(),
        tolerance: a.tolerance.clone(),
    })
}
