//! Tune's measurements, cached by content: the key hashes the input model's bytes (and
//! its external data), the calibration data's bytes, the plan's full settings, the
//! runtime as the report describes it and whittle's version. A second `tune` on the same
//! model and data reuses every plan it measured; one with another budget reuses the
//! plans the budget does not enter (the lossless ones) and measures the rest.

use super::Measured;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A folder of one JSON file per measured plan.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// The default folder: `$XDG_CACHE_HOME/whittle/tune`, else `~/.cache/whittle/tune`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("whittle").join("tune"))
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The measurement stored under `key`, if any (an unreadable entry is a miss).
    pub fn get(&self, key: &str) -> Option<Measured> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores `m` under `key`; a cache that cannot be written is only logged.
    pub fn put(&self, key: &str, m: &Measured) {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let tmp = self.dir.join(format!(".{key}.tmp"));
            std::fs::write(
                &tmp,
                serde_json::to_vec_pretty(m).map_err(std::io::Error::other)?,
            )?;
            std::fs::rename(tmp, self.path(key))
        };
        if let Err(e) = write() {
            tracing::warn!("tune cache {}: {e}", self.dir.display());
        }
    }
}

/// SHA-256 of the files' contents, in order, streamed.
pub fn hash_files(files: &[PathBuf]) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        h.update(f.as_os_str().len().to_le_bytes());
        let mut file = std::fs::File::open(f)?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex(&h.finalize()))
}

/// The files under `path` (itself when a file), sorted: calibration data may be a
/// folder of test_data_set_N.
pub fn files_under(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(path)? {
        out.extend(files_under(&e?.path())?);
    }
    out.sort();
    Ok(out)
}

/// The key of one plan's measurement.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.len().to_le_bytes());
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
