//! `whittle._whittle`: the native half of the whittle Python package, over the CLI's own
//! code paths (`whittle_cli::main`, the job runner, the dump and verify renderers).
//!
//! Every function releases the GIL while it works and catches panics; failures raise
//! `WhittleError(kind, message)`, which the Python half (`python/whittle/`) turns into
//! its exception classes.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::OnceLock;
use whittle_cli::api;
use whittle_cli::job::{self, Outcome, Source};

create_exception!(
    _whittle,
    WhittleError,
    PyException,
    "A whittle failure: args are (kind, message)."
);

/// Runs `work` without the GIL; errors and panics become `WhittleError`.
fn native<T: Send>(py: Python<'_>, work: impl FnOnce() -> anyhow::Result<T> + Send) -> PyResult<T> {
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(work)));
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(WhittleError::new_err((
            api::classify(&e).name(),
            whittle_cli::one_line(&e),
        ))),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            Err(WhittleError::new_err((
                "internal",
                format!("internal error (a bug in whittle, please report it): {what}"),
            )))
        }
    }
}

/// The `whittle` command: runs `argv` (program name first) in this process and returns
/// the exit status, exactly as the binary does.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> PyResult<u8> {
    native(py, || {
        Ok(whittle_cli::main(argv.into_iter().map(Into::into)))
    })
}

/// A model as Python gives it: a path, or encoded bytes named `label`.
fn source(model: &Bound<'_, PyAny>, label: Option<String>) -> PyResult<Source> {
    if let Ok(b) = model.cast::<PyBytes>() {
        return Ok(Source::Bytes {
            bytes: b.as_bytes().to_vec().into(),
            label: label.unwrap_or_else(|| "<bytes>".into()),
        });
    }
    Ok(Source::File(model.extract::<PathBuf>()?))
}

/// An optimized model: its report, its encoding, and a way to write it.
#[pyclass(frozen, module = "whittle._whittle")]
struct Optimized {
    outcome: Outcome,
    /// The `--report` JSON of the run.
    report: String,
    /// The encoding, made on first use.
    encoded: OnceLock<Vec<u8>>,
}

#[pymethods]
impl Optimized {
    /// The run's report as JSON (the CLI's `--report` schema).
    fn report_json(&self) -> String {
        self.report.clone()
    }

    /// The model encoded in one buffer (fails past protobuf's 2 GiB limit).
    fn encode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        if let Some(b) = self.encoded.get() {
            return Ok(PyBytes::new(py, b));
        }
        let bytes = native(py, || Ok(self.outcome.encode()?))?;
        Ok(PyBytes::new(py, self.encoded.get_or_init(|| bytes)))
    }

    /// Writes the model to `path` as `whittle optimize -o PATH` does (external data where
    /// the settings or the size call for it); returns the bytes of the model file.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<u64> {
        native(py, || Ok(self.outcome.save_new(&path)?.model_bytes))
    }
}

/// Optimizes `model` (a path or bytes) as `spec` (JSON, see `whittle_cli::api`) says;
/// writes `output` when given, else encodes the result in memory.
#[pyfunction]
#[pyo3(signature = (model, spec, output=None, label=None))]
fn optimize(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    spec: String,
    output: Option<PathBuf>,
    label: Option<String>,
) -> PyResult<Optimized> {
    let source = source(model, label)?;
    native(py, move || {
        let req = api::optimize_request(&spec)?;
        let outcome = job::run(&source, &req, None)?;
        let encoded = OnceLock::new();
        let report = match &output {
            Some(path) => {
                let saved = outcome.save_new(path)?;
                outcome.report(&path.display().to_string(), saved.model_bytes)
            }
            None => {
                let bytes = outcome.encode()?;
                let r = outcome.report("<memory>", bytes.len() as u64);
                let _ = encoded.set(bytes);
                r
            }
        };
        Ok(Optimized {
            report: serde_json::to_string(&report)?,
            outcome,
            encoded,
        })
    })
}

/// `whittle dump ARGS…`: what the CLI prints.
#[pyfunction]
fn dump(py: Python<'_>, args: Vec<String>) -> PyResult<String> {
    native(py, || api::dump(&args))
}

/// `whittle verify ARGS…`: what the CLI prints, and whether the models agree.
#[pyfunction]
fn verify(py: Python<'_>, args: Vec<String>) -> PyResult<(String, bool)> {
    native(py, || api::verify(&args))
}

/// `whittle certify ARGS…`: what the CLI prints, and whether the certificate holds.
#[pyfunction]
fn certify(py: Python<'_>, args: Vec<String>) -> PyResult<(String, bool)> {
    native(py, || api::certify(&args))
}

/// `whittle tune ARGS…`: the report as JSON.
#[pyfunction]
fn tune(py: Python<'_>, args: Vec<String>) -> PyResult<String> {
    native(py, || api::tune(&args))
}

/// The keys a settings table may hold (`whittle.toml`; keyword arguments with `_`).
#[pyfunction]
fn setting_keys() -> Vec<&'static str> {
    api::setting_keys()
}

#[pymodule]
fn _whittle(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("WhittleError", m.py().get_type::<WhittleError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Optimized>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(optimize, m)?)?;
    m.add_function(wrap_pyfunction!(dump, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(tune, m)?)?;
    m.add_function(wrap_pyfunction!(certify, m)?)?;
    m.add_function(wrap_pyfunction!(setting_keys, m)?)?;
    Ok(())
}
