//! Lossy passes run as the driver's lossy phase runs them: once (never to a fixed point),
//! then inference over the result, as the driver's clean-up does, so that listings carry
//! the types of the values the passes made.

use whittle_ir::Model;
use whittle_ir::infer::{InferOptions, infer};
use whittle_passes::{Pass, PassCx, PassError, PassStat, Pipeline};

/// Runs `passes` once over `model`, then infers its types.
pub fn run(
    passes: Vec<Box<dyn Pass>>,
    model: &mut Model,
    cx: &mut PassCx,
) -> Result<Vec<PassStat>, PassError> {
    let stats = Pipeline::once(passes).run(model, cx)?;
    let opts = InferOptions {
        input_shapes: cx.settings.input_shapes.clone(),
    };
    infer(model, &opts)?;
    Ok(stats)
}
