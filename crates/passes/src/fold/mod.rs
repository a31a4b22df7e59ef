//! Constant folding: values known before the model runs become initializers.

mod eval;
mod shapes;

pub use eval::FoldConstants;
pub use shapes::FoldShapes;
