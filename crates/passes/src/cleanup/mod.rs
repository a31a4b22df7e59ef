//! Clean-up passes: remove what does not contribute to the outputs.

mod dead_code;
mod identity;

pub use dead_code::DeadCode;
pub use identity::Identity;
