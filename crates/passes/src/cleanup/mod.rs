//! Clean-up passes: remove what does not contribute to the outputs or does nothing.

mod constants;
mod cse;
mod dead_code;
mod dedup;
mod empty_concat;
mod identity;
mod if_const;
pub mod noop;
mod zero_state;

pub use constants::ConstantToInitializer;
pub use cse::Cse;
pub use dead_code::DeadCode;
pub use dedup::DedupInitializers;
pub use empty_concat::EmptyConcatInput;
pub use identity::Identity;
pub use if_const::InlineConstantIf;
pub use zero_state::ZeroInitialState;
