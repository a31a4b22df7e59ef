//! The effective settings of `whittle optimize` for one model: defaults, then the config
//! file (top level, then matching `[model."PATTERN"]` sections), then the flags.

use crate::cli::{Level, OptimizeArgs};
use crate::job::{ConfigChoice, VerifyRequest};
use crate::shapes;
use std::collections::BTreeMap;
use std::path::Path;
use whittle::config::DimSetting;
use whittle::{Config, Optimizer, Settings};
use whittle_ir::Dim;

/// What the flags say (keys they leave unset come from the config or the defaults).
pub fn from_flags(a: &OptimizeArgs) -> anyhow::Result<Settings> {
    let shapes = shapes::parse_all(&a.inputs.input_shape)?;
    Ok(Settings {
        level: a.level.map(|l| match l {
            Level::O0 => 0,
            Level::O1 => 1,
            Level::O2 => 2,
        }),
        passes: a.passes.clone(),
        disable: a.disable.clone(),
        input_shapes: (!shapes.is_empty()).then(|| {
            shapes
                .into_iter()
                .map(|(name, dims)| (name, dims.iter().map(dim_setting).collect()))
                .collect::<BTreeMap<_, _>>()
        }),
        fold_limit: a.fold_limit,
        external_data_threshold: a.external_data_threshold,
        external_data_name: a.external_data_name.clone(),
        exclude: a.exclude.clone(),
        enable: a.enable.clone(),
        quantize: a.quantize.clone(),
        per_tensor: a.per_tensor.then_some(true),
        min_elements: a.min_elements,
        decompose: a.decompose.clone(),
        prune: a.prune.clone(),
        budget: a.budget.clone(),
        min_gain: a.min_gain,
        measure: a.measure.then_some(true),
        calibrate: a.calibrate.clone(),
        calibration: a.calibration.clone(),
        full_range: a.full_range.then_some(true),
        block_size: a.block_size,
        int4_format: a.int4_format.clone(),
        ops: a.ops.clone(),
        int8_form: a.int8_form.clone(),
        act_scale: a.act_scale.clone(),
        opset: a.opset,
    })
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

/// The optimizer for the model file `model`, with the config file it read (if any).
pub fn optimizer_for(
    a: &OptimizeArgs,
    model: &Path,
) -> anyhow::Result<(Optimizer, Option<Config>)> {
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
