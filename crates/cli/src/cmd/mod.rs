//! Subcommand implementations.

mod batch;
mod bench;
mod certify;
mod dump;
mod optimize;
mod tune;
mod verify;

use crate::cli::Command;
pub use certify::render as certify_render;
pub use dump::io_text as dump_io;
pub use dump::render as dump_render;
pub use tune::render_json as tune_render;
pub use verify::render as verify_render;

/// Runs one subcommand; the exit code is for outcomes that are not errors.
pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Optimize(args) => optimize::run(*args),
        Command::Dump(args) => dump::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Tune(args) => tune::run(*args),
        Command::Certify(args) => certify::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = crate::cli::Cli::command();
            clap_complete::generate(shell, &mut cmd, "whittle", &mut std::io::stdout());
            Ok(0)
        }
    }
}
