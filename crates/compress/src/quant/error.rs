//! What can go wrong in the quantization steps that run the model (calibration).

use whittle_eval::EvalError;
use whittle_passes::pass::PassError;

/// A calibrated quantization failed; the model is left as it was before it.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("quantize: {0}")]
    Eval(#[from] EvalError),
    #[error("quantize: {0}")]
    Pass(#[from] PassError),
    #[error("quantize: {0}")]
    Data(String),
}
