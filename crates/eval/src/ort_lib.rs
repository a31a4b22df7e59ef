//! Finding and loading the ONNX Runtime library. whittle never links or downloads ONNX
//! Runtime: it loads the shared library at run time from, in order, the path the user
//! gave (`--ort-lib`), `ORT_DYLIB_PATH`, or the `capi/` folder of the `onnxruntime`
//! Python package that `python3` (or the active virtualenv's python) imports. One library
//! is loaded per process; asking for a second one is an error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use thiserror::Error;

/// The oldest ONNX Runtime whittle runs with (the C API version the `ort` crate is built
/// against): older libraries are refused with their version.
pub const MIN_ORT_VERSION: &str = "1.20";

/// Why ONNX Runtime could not be used.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum OrtLibError {
    #[error("ONNX Runtime library not found; looked at {looked}")]
    NotFound { looked: String },
    #[error("ONNX Runtime at {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error(
        "ONNX Runtime is already loaded from {loaded} in this process; cannot also load {asked}"
    )]
    Second { loaded: PathBuf, asked: PathBuf },
}

/// A loaded ONNX Runtime: where it came from and its version.
#[derive(Clone)]
pub struct OrtLib {
    /// The library file.
    pub path: PathBuf,
    /// Its version (`1.20.1`), from the library's build info.
    pub version: String,
    /// How it was found: `--ort-lib`, `ORT_DYLIB_PATH` or `python package`.
    pub source: &'static str,
    pub(crate) env: ort::environment::Environment,
}

impl std::fmt::Debug for OrtLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtLib")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("source", &self.source)
            .finish()
    }
}

impl PartialEq for OrtLib {
    fn eq(&self, other: &OrtLib) -> bool {
        self.path == other.path
    }
}

/// The process's one loaded library (failed attempts are not kept: a later call may
/// name a library that works).
static LOADED: OnceLock<OrtLib> = OnceLock::new();
/// Serialises first loads, so two threads cannot race `init_from`.
static LOADING: Mutex<()> = Mutex::new(());

/// Finds and loads ONNX Runtime; `explicit` is `--ort-lib` (a library file, or a folder
/// holding one). Later calls return the library already loaded.
pub fn load_ort(explicit: Option<&Path>) -> Result<OrtLib, OrtLibError> {
    let _guard = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    let (path, source) = find_library(explicit)?;
    if let Some(lib) = LOADED.get() {
        return match same(&lib.path, &path) {
            true => Ok(lib.clone()),
            false => Err(OrtLibError::Second {
                loaded: lib.path.clone(),
                asked: path,
            }),
        };
    }
    let lib = open(&path, source)?;
    let _ = LOADED.set(lib.clone());
    Ok(lib)
}

fn same(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The library file whittle would load, and how it was found.
pub fn find_library(explicit: Option<&Path>) -> Result<(PathBuf, &'static str), OrtLibError> {
    let mut looked = Vec::new();
    if let Some(p) = explicit {
        return library_at(p)
            .map(|f| (f, "--ort-lib"))
            .ok_or_else(|| OrtLibError::NotFound {
                looked: format!("--ort-lib {} (no ONNX Runtime library there)", p.display()),
            });
    }
    looked.push("--ort-lib (not given)".to_string());
    match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        Some(v) => match library_at(Path::new(&v)) {
            Some(f) => return Ok((f, "ORT_DYLIB_PATH")),
            None => looked.push(format!("ORT_DYLIB_PATH={} (no library there)", v.display())),
        },
        None => looked.push("ORT_DYLIB_PATH (not set)".to_string()),
    }
    for python in pythons() {
        match python_package(&python) {
            Ok(dir) => match library_at(&dir.join("capi")) {
                Some(f) => return Ok((f, "python package")),
                None => looked.push(format!("{} (no library in capi/)", dir.display())),
            },
            Err(why) => looked.push(format!("{python}: {why}")),
        }
    }
    Err(OrtLibError::NotFound {
        looked: looked.join("; "),
    })
}

/// The Pythons asked for the `onnxruntime` package: the active virtualenv's, then
/// `python3` on PATH.
fn pythons() -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        let p = Path::new(&v).join("bin").join("python");
        if p.exists() {
            out.push(p.display().to_string());
        }
    }
    out.push("python3".to_string());
    out
}

/// The folder of the `onnxruntime` package as `python` would import it (found without
/// importing it).
fn python_package(python: &str) -> Result<PathBuf, String> {
    let code = "import importlib.util as u\ns = u.find_spec('onnxruntime')\n\
                print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
    let out = Command::new(python)
        .args(["-c", code])
        .output()
        .map_err(|e| format!("cannot run ({e})"))?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || dir.is_empty() {
        return Err("no onnxruntime package".to_string());
    }
    Ok(PathBuf::from(dir))
}

/// `p` itself when it is a file, else the ONNX Runtime library inside the folder `p`.
fn library_at(p: &Path) -> Option<PathBuf> {
    if p.is_file() {
        return Some(p.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(p)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| is_ort_library(f))
        .collect();
    found.sort();
    found.pop()
}

/// `libonnxruntime.so[.1.20.1]`, `libonnxruntime[.1.20.1].dylib` or `onnxruntime.dll`
/// (not the providers' libraries).
fn is_ort_library(f: &Path) -> bool {
    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name
        .strip_prefix(std::env::consts::DLL_PREFIX)
        .unwrap_or(name);
    let Some(rest) = stem.strip_prefix("onnxruntime") else {
        return false;
    };
    let suffix = std::env::consts::DLL_SUFFIX;
    rest == suffix
        || rest.starts_with(&format!("{suffix}."))
        || (rest.starts_with('.') && rest.ends_with(suffix))
}

/// Loads the library at `path` and makes the process's ONNX Runtime environment.
fn open(path: &Path, source: &'static str) -> Result<OrtLib, OrtLibError> {
    let fail = |reason: String| OrtLibError::Load {
        path: path.to_path_buf(),
        reason,
    };
    let builder = ort::init_from(path).map_err(|e| {
        fail(format!(
            "{e} (whittle needs ONNX Runtime {MIN_ORT_VERSION} or later)"
        ))
    })?;
    let env = builder
        .with_name("whittle")
        .with_telemetry(false)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    Ok(OrtLib {
        path: path.to_path_buf(),
        version: version_of(path),
        source,
        env,
    })
}

/// The version from ONNX Runtime's build info (`git-branch=rel-1.20.1`), else from the
/// file name (`libonnxruntime.so.1.20.1`), else "unknown".
fn version_of(path: &Path) -> String {
    let info = ort::info();
    let from_info = info
        .split([',', ' '])
        .find_map(|w| w.trim().strip_prefix("git-branch=rel-"))
        .map(str::to_string);
    let from_name = || {
        let name = path.file_name()?.to_str()?;
        let v = name.rsplit_once(".so.").map(|(_, v)| v)?;
        Some(v.to_string())
    };
    from_info
        .or_else(from_name)
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_are_told_apart_from_provider_libraries() {
        let yes = [
            "libonnxruntime.so",
            "libonnxruntime.so.1.32.0",
            "libonnxruntime.so.1",
        ];
        let no = [
            "libonnxruntime_providers_shared.so",
            "onnxruntime_pybind11_state.so",
            "libonnx.so",
        ];
        if std::env::consts::DLL_SUFFIX != ".so" {
            return;
        }
        for n in yes {
            assert!(is_ort_library(Path::new(n)), "{n}");
        }
        for n in no {
            assert!(!is_ort_library(Path::new(n)), "{n}");
        }
    }

    #[test]
    fn an_explicit_path_without_a_library_is_named_in_the_error() {
        let dir = std::env::temp_dir().join("whittle-no-ort-here");
        let _ = std::fs::create_dir_all(&dir);
        let err = find_library(Some(&dir)).unwrap_err().to_string();
        assert!(err.contains("--ort-lib"), "{err}");
        assert!(err.contains("whittle-no-ort-here"), "{err}");
    }
}
