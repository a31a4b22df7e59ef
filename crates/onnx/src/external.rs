//! External tensor data: resolving, validating and memory-mapping the files a model's
//! tensors point at, and laying out the files an export writes.

use crate::error::OnnxError;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use whittle_ir::Deferred;

/// Loads external data relative to a model's folder, mapping each file once.
pub struct ExternalLoader {
    base: Option<PathBuf>,
    files: BTreeMap<String, Bytes>,
    /// Map external files fully up front (false: pages load when touched).
    pub populate: bool,
}

impl ExternalLoader {
    /// A loader for a model stored in folder `base` (None: the model came from memory and
    /// external references are an error).
    pub fn new(base: Option<PathBuf>) -> Self {
        ExternalLoader {
            base,
            files: BTreeMap::new(),
            populate: true,
        }
    }

    /// The bytes `[offset, offset+length)` of `location` for tensor `tensor`.
    pub fn load(
        &mut self,
        tensor: &str,
        location: &str,
        offset: Option<&str>,
        length: Option<&str>,
    ) -> Result<Bytes, OnnxError> {
        let err = |reason: String| OnnxError::External {
            tensor: tensor.to_string(),
            reason,
        };
        let base = self
            .base
            .clone()
            .ok_or_else(|| err("the model was not read from a file".into()))?;
        let path = resolve(&base, location).map_err(err)?;
        let file = match self.files.get(location) {
            Some(b) => b.clone(),
            None => {
                let b = map_file_with(&path, self.populate)
                    .map_err(|e| err(format!("cannot read '{location}': {e}")))?;
                self.files.insert(location.to_string(), b.clone());
                b
            }
        };
        let parse = |s: Option<&str>, what: &str| -> Result<Option<u64>, OnnxError> {
            s.map(|s| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| err(format!("{what} '{s}' is not a number")))
            })
            .transpose()
        };
        let offset = parse(offset, "offset")?.unwrap_or(0);
        let length = parse(length, "length")?;
        let size = file.len() as u64;
        let end = match length {
            Some(l) => offset
                .checked_add(l)
                .ok_or_else(|| err("offset + length overflows".into()))?,
            None => size,
        };
        if offset > size || end > size {
            return Err(err(format!(
                "'{location}' has {size} bytes but the tensor needs bytes {offset}..{end}"
            )));
        }
        Ok(file.slice(offset as usize..end as usize))
    }
}

/// Checks that `location` is a relative path that stays inside `base`, and joins them.
pub fn resolve(base: &Path, location: &str) -> Result<PathBuf, String> {
    let rel = Path::new(location);
    if location.is_empty() {
        return Err("empty location".into());
    }
    if rel.is_absolute()
        || rel.has_root()
        || location.starts_with('/')
        || location.starts_with('\\')
    {
        return Err(format!(
            "location '{location}' is an absolute path; only paths relative to the model are allowed"
        ));
    }
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!("location '{location}' leaves the model's folder"));
    }
    let joined = base.join(rel);
    // A symlink inside the folder could still point outside it.
    if let (Ok(real), Ok(real_base)) = (joined.canonicalize(), base.canonicalize())
        && !real.starts_with(&real_base)
    {
        return Err(format!(
            "location '{location}' resolves outside the model's folder"
        ));
    }
    Ok(joined)
}

/// Memory-maps a whole file as `Bytes` (an empty file gives empty bytes), every page
/// mapped up front (the caller will read all of it).
pub fn map_file(path: &Path) -> Result<Bytes, OnnxError> {
    map_file_with(path, true)
}

pub use crate::mapped::map_file_with;

/// What an export writes at one place of an external file: bytes it has (a kept mapped
/// tensor, a rewritten one), or a deferred tensor computed only when the file is written.
#[derive(Clone, Debug)]
pub enum Piece {
    Ready(Bytes),
    Deferred { tensor: String, data: Deferred },
}

impl Piece {
    /// The number of bytes the piece occupies.
    pub fn len(&self) -> u64 {
        match self {
            Piece::Ready(b) => b.len() as u64,
            Piece::Deferred { data, .. } => data.len(),
        }
    }

    /// True for an empty piece.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes (computing a deferred tensor now).
    pub fn bytes(&self) -> Result<Bytes, OnnxError> {
        match self {
            Piece::Ready(b) => Ok(b.clone()),
            Piece::Deferred { tensor, data } => {
                data.bytes(tensor).map_err(|e| OnnxError::ir("export", e))
            }
        }
    }
}

impl From<Bytes> for Piece {
    fn from(b: Bytes) -> Self {
        Piece::Ready(b)
    }
}

/// The files an export writes beside the model: for each location, byte ranges to place.
#[derive(Default)]
pub struct ExternalLayout {
    pub files: BTreeMap<String, Vec<(u64, Piece)>>,
    /// Per location, bytes already taken by pieces placed later (new pieces go after).
    reserved: BTreeMap<String, u64>,
}

impl ExternalLayout {
    /// Places `data` at `offset` of `location`.
    pub fn place(&mut self, location: &str, offset: u64, data: impl Into<Piece>) {
        let data = data.into();
        self.files
            .entry(location.to_string())
            .or_default()
            .push((offset, data));
    }

    /// Keeps `[0, end)` of `location` for pieces placed at their own offsets later.
    pub fn reserve(&mut self, location: &str, end: u64) {
        self.reserved.insert(location.to_string(), end);
    }

    /// The first free offset in `location`, rounded up to `align`.
    pub fn end_of(&self, location: &str, align: u64) -> u64 {
        let end = self
            .files
            .get(location)
            .and_then(|v| v.iter().map(|(o, d)| o + d.len()).max())
            .unwrap_or(0)
            .max(self.reserved.get(location).copied().unwrap_or(0));
        end.div_ceil(align) * align
    }

    /// True when nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Removes the dead space that tensors no longer written left in a kept data file:
    /// a location whose pieces leave a gap of more than [`KEPT_GAP`] bytes (more than any
    /// exporter's alignment padding) is laid out again, in offset order, each piece at the
    /// next `align` boundary. Returns, per location laid out again, old offset → new.
    /// Untouched files keep their offsets, so their round trip stays byte-equal.
    pub fn compact(&mut self, align: u64) -> BTreeMap<String, BTreeMap<u64, u64>> {
        let mut moved = BTreeMap::new();
        for (location, pieces) in &mut self.files {
            pieces.sort_by_key(|(o, d)| (*o, d.len()));
            let mut end = 0u64;
            let gapped = pieces.iter().any(|(o, d)| {
                let gap = o.saturating_sub(end) > KEPT_GAP;
                end = end.max(o + d.len());
                gap
            });
            if !gapped {
                continue;
            }
            let mut remap = BTreeMap::new();
            let mut next = 0u64;
            for (o, d) in pieces.iter_mut() {
                // Pieces that shared an offset share the new one.
                let new = *remap.entry(*o).or_insert_with(|| {
                    let at = next.div_ceil(align) * align;
                    next = at + d.len();
                    at
                });
                next = next.max(new + d.len());
                *o = new;
            }
            moved.insert(location.clone(), remap);
        }
        moved
    }
}

/// The largest gap between kept external tensors that is left alone: exporters pad to at
/// most a page (4 KiB); a larger gap is a tensor that is no longer written.
pub const KEPT_GAP: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_of_dropped_tensors_are_compacted_and_tight_files_kept() {
        let piece = |n: usize| Bytes::from(vec![7u8; n]);
        let mut tight = ExternalLayout::default();
        tight.place("a.data", 0, piece(100));
        tight.place("a.data", 128, piece(5000));
        tight.place("a.data", 5128 + 2000, piece(10)); // alignment-sized gap: kept
        assert!(tight.compact(64).is_empty());
        assert_eq!(tight.files["a.data"][2].0, 7128);
        let mut gapped = ExternalLayout::default();
        gapped.place("b.data", 1 << 20, piece(100));
        gapped.place("b.data", 0, piece(64));
        gapped.place("b.data", 1 << 20, piece(100)); // shared by two tensors
        gapped.place("b.data", (1 << 20) + 100 + 5000, piece(3));
        let moved = gapped.compact(64);
        let remap = &moved["b.data"];
        assert_eq!(remap[&0], 0);
        assert_eq!(remap[&(1 << 20)], 64);
        assert_eq!(remap[&((1 << 20) + 5100)], 192);
        let offsets: Vec<u64> = gapped.files["b.data"].iter().map(|p| p.0).collect();
        assert_eq!(offsets, [0, 64, 64, 192]);
    }

    #[test]
    fn hostile_locations_are_rejected() {
        let base = Path::new("/tmp");
        assert!(resolve(base, "/etc/passwd").is_err());
        assert!(resolve(base, "../x.bin").is_err());
        assert!(resolve(base, "a/../../x.bin").is_err());
        assert!(resolve(base, "").is_err());
        assert!(resolve(base, "weights/w.bin").is_ok());
    }
}
