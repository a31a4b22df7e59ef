//! For `build.rs`: optimize a model into `OUT_DIR`, watch its files, skip unchanged work.

use crate::job::ConfigChoice;
use crate::{Config, Error, Optimizer, Settings};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Optimizes `model` into `$OUT_DIR/<stem>.opt.onnx` and returns that path.
///
/// Prints `cargo:rerun-if-changed` for the model and each of its external-data files, and
/// skips the optimization when a content hash of the model bytes, its external data, the
/// optimizer's settings and the whittle version matches the one stored beside the cached
/// output.
pub fn optimize(model: impl AsRef<Path>, optimizer: &Optimizer) -> Result<PathBuf, Error> {
    let out_dir = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::Config("OUT_DIR is not set: call whittle::build::optimize from build.rs".into())
        })?;
    optimize_into(model.as_ref(), optimizer, &out_dir, &mut |line| {
        println!("{line}")
    })
}

/// [`optimize`] with the settings of the project's config: `whittle.toml` beside the
/// model, else `[package.metadata.whittle]` in `$CARGO_MANIFEST_DIR/Cargo.toml`, else the
/// defaults. Prints `cargo:rerun-if-changed` for the config file too.
pub fn optimize_configured(model: impl AsRef<Path>) -> Result<PathBuf, Error> {
    let model = model.as_ref();
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map(|d| PathBuf::from(d).join("Cargo.toml"));
    let choice = ConfigChoice::Project { manifest };
    let plan = crate::job::resolve(&Settings::default(), &choice, model, true)?;
    if let Some(config) = &plan.config {
        println!("cargo:rerun-if-changed={}", config.path.display());
    }
    optimize(model, &plan.optimizer)
}

/// The config that applies to `model`: `whittle.toml` beside it, else the Cargo.toml's
/// `[package.metadata.whittle]` (the job's [`ConfigChoice::Project`]).
pub fn project_config(model: &Path, manifest: Option<&Path>) -> Result<Option<Config>, Error> {
    let choice = ConfigChoice::Project {
        manifest: manifest.map(Path::to_path_buf),
    };
    crate::job::config_for(&choice, model, true)
}

/// [`optimize`] with an explicit output folder and a sink for the cargo directives.
pub fn optimize_into(
    model: &Path,
    optimizer: &Optimizer,
    out_dir: &Path,
    say: &mut dyn FnMut(String),
) -> Result<PathBuf, Error> {
    let files = watched_files(model)?;
    for f in &files {
        say(format!("cargo:rerun-if-changed={}", f.display()));
    }
    let stem = model
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let out = out_dir.join(format!("{stem}.opt.onnx"));
    let stamp = out_dir.join(format!("{stem}.opt.onnx.sha256"));
    let key = cache_key(&files, optimizer)?;
    let fresh = out.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == key);
    if !fresh {
        optimizer.optimize_file(model, &out)?;
        std::fs::write(&stamp, &key).map_err(|e| whittle_onnx::OnnxError::io(&stamp, e))?;
    }
    Ok(out)
}

/// The model and every external-data file it references.
fn watched_files(model: &Path) -> Result<Vec<PathBuf>, Error> {
    let m = whittle_onnx::read_model_lazy(model)?;
    let files = whittle_onnx::InputFiles::of(&m, model);
    Ok(files.all().map(Path::to_path_buf).collect())
}

/// SHA-256 over the files' bytes and the optimizer's fingerprint.
fn cache_key(files: &[PathBuf], optimizer: &Optimizer) -> Result<String, Error> {
    let mut h = Sha256::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| whittle_onnx::OnnxError::io(f, e))?;
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    h.update(optimizer.fingerprint().as_bytes());
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
