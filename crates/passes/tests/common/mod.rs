//! What the pass tests share: the settings whittle's driver gives a pipeline.
#![allow(dead_code)] // each test file uses its own part

use whittle_passes::{PassCx, PassSettings};

/// Settings with tract as constant folding's evaluator, as whittle's driver gives them.
pub fn settings() -> PassSettings {
    PassSettings {
        evaluator: whittle_ir::evaluate::Evaluator::new(whittle_eval::TractNodes),
        ..PassSettings::default()
    }
}

/// A pass context with [`settings`].
pub fn cx() -> PassCx {
    PassCx::new(settings())
}
