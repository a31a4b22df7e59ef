//! Progress bars on a terminal for long work; nothing when stderr is not a terminal or
//! with `-q`.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Called once by `main` with `-q`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// True with `-q`: errors only, no report on stdout, no logs or progress.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn shown() -> bool {
    !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// A bar over `len` items of work.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !shown() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len)
        .with_style(style)
        .with_prefix(what.to_string())
}

/// A spinner for work of unknown length (the passes of one model).
pub fn spinner(what: &str) -> ProgressBar {
    if !shown() {
        return ProgressBar::hidden();
    }
    let p = ProgressBar::new_spinner().with_prefix(what.to_string());
    p.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    p.enable_steady_tick(std::time::Duration::from_millis(120));
    p
}
