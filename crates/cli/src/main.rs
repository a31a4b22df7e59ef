//! `whittle`: optimize, inspect and verify ONNX models.

use std::process::ExitCode;

fn main() -> ExitCode {
    // `whittle dump big.onnx | head` must end quietly when head stops reading, as other
    // Unix tools do, not panic on the failed write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    ExitCode::from(whittle_cli::main(std::env::args_os()))
}
