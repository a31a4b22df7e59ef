//! Constant folding: values known before the model runs become initializers.

mod eval;
mod reshape;
mod shapes;

pub use eval::FoldConstants;
pub use reshape::ReshapeTarget;
pub use shapes::FoldShapes;
