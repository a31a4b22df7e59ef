//! The `whittle` command, as a library: the binary's `main` and the Python package's
//! `whittle` command both call [`main`], and the Python API calls [`api`], so all three
//! run the same code.

pub mod api;
mod cli;
mod cmd;
mod html;
mod human;
pub mod job;
mod progress;
pub mod report;
mod run_text;
mod settings;
mod shapes;
mod summary;
mod testinputs;

use clap::Parser;
use std::ffi::OsString;

/// Runs the command line `args` (the program name first) and returns the exit status:
/// 0 success, 1 failure (or "would change" with `--check`), 2 usage errors and
/// `--check` failures. Usage errors, `--help` and `--version` print and exit the
/// process, as clap does.
pub fn main(args: impl IntoIterator<Item = OsString>) -> u8 {
    let args = cli::Cli::parse_from(args);
    init_tracing(args.verbose, args.quiet);
    progress::set_quiet(args.quiet);
    match cmd::run(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            1
        }
    }
}

/// The error and its causes on one line: "outer: inner: root".
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Log to stderr; `-v` raises and `-q` lowers the level; `RUST_LOG` overrides both. A
/// second call in one process (the Python `whittle` command run twice) keeps the first.
fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
