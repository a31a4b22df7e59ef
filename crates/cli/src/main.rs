//! `whittle`: optimize, inspect and verify ONNX models.

mod cli;
mod cmd;
mod human;
mod progress;
mod report;
mod settings;
mod shapes;
mod summary;
mod testinputs;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `whittle dump big.onnx | head` must end quietly when head stops reading, as other
    // Unix tools do, not panic on the failed write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    init_tracing(args.verbose, args.quiet);
    progress::set_quiet(args.quiet);
    match cmd::run(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line: "outer: inner: root".
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Log to stderr; `-v` raises and `-q` lowers the level; `RUST_LOG` overrides both.
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
