//! Memory-mapped model files, and giving their pages back when tensors are dropped.
//!
//! A rewrite that replaces a weight (Conv+BatchNormalization folding, say) leaves the old
//! weight's pages mapped and resident: without help, peak memory would be the file plus
//! every rewritten weight. Each map registers its address range; when the IR drops a
//! tensor ([`whittle_ir::tensor::set_release_hook`]) the pages entirely inside it are
//! returned with `madvise(MADV_DONTNEED)`. For a read-only file mapping that is always
//! safe: a later read faults the same bytes in again from the file.

use crate::error::OnnxError;
use bytes::Bytes;
use std::path::Path;
use std::sync::Mutex;

/// Address ranges (start, length) of the live maps.
static MAPS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// A map that unregisters its range when the last view of it is dropped.
struct Mapped(memmap2::Mmap);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let start = self.0.as_ptr() as usize;
        if let Ok(mut maps) = MAPS.lock() {
            maps.retain(|(s, _)| *s != start);
        }
    }
}

/// Memory-maps a whole file as `Bytes` (an empty file gives empty bytes). With
/// `populate`, every page is mapped in one call instead of one fault per page (export
/// reads all of it); without, pages load when touched.
pub fn map_file_with(path: &Path, populate: bool) -> Result<Bytes, OnnxError> {
    let file = std::fs::File::open(path).map_err(|e| OnnxError::io(path, e))?;
    let len = file.metadata().map_err(|e| OnnxError::io(path, e))?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    let mut opts = memmap2::MmapOptions::new();
    // Prefaulting a file bigger than this would make it all resident at once.
    const POPULATE_LIMIT: u64 = 1 << 30;
    if populate && len <= POPULATE_LIMIT {
        opts.populate();
    }
    // SAFETY: the map is read-only. If another process truncates the file while we hold
    // the map, reads could fault; whittle writes its own outputs via rename, never in place.
    let map = unsafe { opts.map(&file) }.map_err(|e| OnnxError::io(path, e))?;
    if !populate {
        // Inspection reads protobuf headers scattered between tensors: without this the
        // kernel's readahead around each header makes most of the weights resident.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
    }
    if let Ok(mut maps) = MAPS.lock() {
        maps.push((map.as_ptr() as usize, map.len()));
    }
    whittle_ir::tensor::set_release_hook(release_pages);
    Ok(Bytes::from_owner(Mapped(map)))
}

/// Returns the pages lying entirely inside `b` to the OS, if `b` is part of a file map.
pub fn release_pages(b: &Bytes) {
    let (p, n) = (b.as_ptr() as usize, b.len());
    let inside = MAPS
        .lock()
        .map(|maps| maps.iter().any(|(s, l)| p >= *s && p + n <= s + l))
        .unwrap_or(false);
    if !inside {
        return;
    }
    const PAGE: usize = 4096;
    let start = p.div_ceil(PAGE) * PAGE;
    let end = (p + n) / PAGE * PAGE;
    if end > start {
        advise_dontneed(start, end - start);
    }
}

#[cfg(target_os = "linux")]
fn advise_dontneed(start: usize, len: usize) {
    // SAFETY: the range lies inside a live read-only file mapping (checked above); for
    // such mappings MADV_DONTNEED only drops resident pages, which fault back in from the
    // file on the next read.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_dontneed(_start: usize, _len: usize) {}
