//! Does a saved model already hold what a save would write? (`optimize --check`.)

use crate::error::OnnxError;
use crate::export::ExportOptions;
use crate::external::resolve;
use crate::file::{layout_for, stream_external};
use prost::Message;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use whittle_ir::Model;

/// The answer of [`compare_saved`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Saved {
    /// Every file holds exactly the bytes a save would write.
    UpToDate,
    /// This file does not exist.
    Missing(PathBuf),
    /// This file holds other bytes.
    Differs(PathBuf),
}

/// Compares what `save_model(m, path, opts)` would write with the files on disk, reading
/// them in pieces (nothing is written, and no file is held in memory whole).
pub fn compare_saved(m: &Model, path: &Path, opts: &ExportOptions) -> Result<Saved, OnnxError> {
    let (p, layout, _) = layout_for(m, path, opts)?;
    let want = p.encode_to_vec();
    match read_if_exists(path)? {
        None => return Ok(Saved::Missing(path.to_path_buf())),
        Some(have) if have != want => return Ok(Saved::Differs(path.to_path_buf())),
        Some(_) => {}
    }
    let dir = crate::targets::folder_of(path);
    for (location, chunks) in &layout.files {
        let target = resolve(&dir, location).map_err(|reason| OnnxError::External {
            tensor: location.clone(),
            reason,
        })?;
        let file = match std::fs::File::open(&target) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Saved::Missing(target));
            }
            Err(e) => return Err(OnnxError::io(&target, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| OnnxError::io(&target, e))?
            .len();
        let mut cmp = Comparer {
            file: BufReader::with_capacity(1 << 20, file),
            buf: Vec::new(),
            equal: true,
        };
        let expected_len = stream_external(location, chunks, &mut cmp)?;
        if !cmp.equal || expected_len != len {
            return Ok(Saved::Differs(target));
        }
    }
    Ok(Saved::UpToDate)
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, OnnxError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OnnxError::io(path, e)),
    }
}

/// A writer that compares what it is given with the next bytes of a file.
struct Comparer<R: Read> {
    file: R,
    buf: Vec<u8>,
    equal: bool,
}

impl<R: Read> Write for Comparer<R> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // At most 1 MiB per call (write_all loops), so a large tensor is never copied whole.
        let data = &data[..data.len().min(1 << 20)];
        if self.equal {
            self.buf.resize(data.len(), 0);
            match self.file.read_exact(&mut self.buf) {
                Ok(()) => self.equal = self.buf == data,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => self.equal = false,
                Err(e) => return Err(e),
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
