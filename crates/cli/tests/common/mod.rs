//! Helpers shared by the CLI test files (each file is its own test crate, so not every
//! one uses every helper).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `whittle` binary built for these tests.
pub fn whittle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whittle"))
        .args(args)
        .output()
        .expect("runs")
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
