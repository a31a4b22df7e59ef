//! Reading and writing model files: memory-mapped reads, streamed atomic writes.

use crate::error::OnnxError;
use crate::export::{ExportOptions, export_model, export_model_sized};
use crate::external::{ExternalLayout, ExternalLoader, Piece, map_file, resolve};
use crate::import::import_model;
use crate::proto;
use crate::sink::{EagerWriteback, WriteSink};
use bytes::Bytes;
use prost::Message;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use whittle_ir::{Model, Tensor};

/// Protobuf refuses messages of 2 GiB and more; stay a little below.
pub const PROTOBUF_LIMIT: u64 = (2 << 30) - (1 << 20);

/// Decodes model bytes into the prost message. `path` is only for messages.
pub fn decode(bytes: Bytes, path: &Path) -> Result<proto::ModelProto, OnnxError> {
    if bytes.is_empty() {
        return Err(OnnxError::Empty {
            path: path.to_path_buf(),
        });
    }
    let m = crate::wire_list::decode_viewing::<proto::ModelProto>(bytes)
        .map_err(|e| OnnxError::decode(path, &e))?;
    if m.graph.is_none() && m.ir_version.is_none() {
        return Err(OnnxError::Invalid(format!(
            "{}: does not look like an ONNX model (no graph and no ir_version)",
            path.display()
        )));
    }
    Ok(m)
}

/// Reads a serialized `TensorProto` file (e.g. `test_data_set_0/input_0.pb`).
pub fn read_tensor(path: &Path) -> Result<Tensor, OnnxError> {
    let bytes = std::fs::read(path).map_err(|e| OnnxError::io(path, e))?;
    let t =
        proto::TensorProto::decode(Bytes::from(bytes)).map_err(|e| OnnxError::decode(path, &e))?;
    let mut ext = ExternalLoader::new(path.parent().map(Path::to_path_buf));
    crate::import::import_tensor(t, &mut ext)
}

/// Reads a model file (memory-mapped; tensor data is not copied), with its external data.
pub fn read_model(path: &Path) -> Result<Model, OnnxError> {
    read_model_mapped(path, map_file(path)?, true)
}

/// Like [`read_model`], but pages of the model file are read only when touched: for
/// inspecting a model's structure without reading its weights.
pub fn read_model_lazy(path: &Path) -> Result<Model, OnnxError> {
    read_model_mapped(path, crate::external::map_file_with(path, false)?, false)
}

fn read_model_mapped(path: &Path, bytes: Bytes, populate: bool) -> Result<Model, OnnxError> {
    let base = Some(crate::targets::folder_of(path));
    read_model_with(bytes, path, base, populate)
}

/// Converts model bytes; external data is resolved against `base` when given.
pub fn read_model_bytes(
    bytes: Bytes,
    path: &Path,
    base: Option<PathBuf>,
) -> Result<Model, OnnxError> {
    read_model_with(bytes, path, base, true)
}

fn read_model_with(
    bytes: Bytes,
    path: &Path,
    base: Option<PathBuf>,
    populate: bool,
) -> Result<Model, OnnxError> {
    let proto = decode(bytes, path)?;
    let mut ext = ExternalLoader::new(base);
    ext.populate = populate;
    let model = import_model(proto, &mut ext).and_then(|m| {
        crate::validate::validate(&m)?;
        Ok(m)
    });
    model.map_err(|e| match e {
        OnnxError::Ir { context, source } => OnnxError::Ir {
            context: format!("{}: {context}", path.display()),
            source,
        },
        OnnxError::External { tensor, reason } => OnnxError::External {
            tensor,
            reason: format!("{reason} (model {})", path.display()),
        },
        OnnxError::Invalid(m) => OnnxError::Invalid(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// What a save wrote.
#[derive(Clone, Debug, Default)]
pub struct SaveReport {
    /// Bytes of the model file.
    pub model_bytes: u64,
    /// External data files written (relative location, bytes).
    pub external_files: Vec<(String, u64)>,
    /// True when tensors were moved to external data because the model passed 2 GiB.
    pub forced_external: bool,
}

/// Encodes the model to bytes in memory (for library users; tensors are copied).
pub fn encode_model(m: &Model) -> Result<Vec<u8>, OnnxError> {
    let mut layout = ExternalLayout::default();
    let p = export_model(m, &ExportOptions::default(), &mut layout)?;
    if !layout.is_empty() {
        return Err(OnnxError::Invalid(
            "the model has external data; save it to a file instead".into(),
        ));
    }
    Ok(p.encode_to_vec())
}

/// Encodes `m` in one self-contained buffer, the bytes of external tensors embedded
/// (what an in-memory caller wants); fails past protobuf's 2 GiB limit.
pub fn encode_model_inline(m: &Model) -> Result<Vec<u8>, OnnxError> {
    let opts = ExportOptions {
        inline_external: true,
        ..ExportOptions::default()
    };
    let p = export_model(m, &opts, &mut ExternalLayout::default())?;
    let len = p.encoded_len() as u64;
    if len > PROTOBUF_LIMIT {
        return Err(OnnxError::Invalid(format!(
            "the model is {len} bytes, over protobuf's 2 GiB limit: write it to a file \
             (its large tensors then go to external data)"
        )));
    }
    Ok(p.encode_to_vec())
}

/// The proto and external layout `save_model` writes for `m` (moving tensors of 1 KiB and
/// more to external data when the model would pass protobuf's 2 GiB limit); the flag
/// says whether that happened.
pub(crate) fn layout_for(
    m: &Model,
    path: &Path,
    opts: &ExportOptions,
) -> Result<(proto::ModelProto, ExternalLayout, bool), OnnxError> {
    let location = opts.data_name(Some(path));
    crate::targets::check_data_name(&location).map_err(|reason| OnnxError::External {
        tensor: location.clone(),
        reason,
    })?;
    let opts = &ExportOptions {
        external_location: Some(location),
        ..opts.clone()
    };
    let mut layout = ExternalLayout::default();
    // Sized first: deferred tensors kept inline are computed only once the model is
    // known to fit (a quantized 7B model must not be computed in memory to find out).
    let (mut p, unfilled) = export_model_sized(m, opts, &mut layout, false)?;
    let mut forced = false;
    if p.encoded_len() as u64 + unfilled > PROTOBUF_LIMIT && opts.external_threshold.is_none() {
        tracing::warn!(
            "model passes protobuf's 2 GiB limit: moving tensors of 1 KiB and more to external data"
        );
        let more = ExportOptions {
            external_threshold: Some(1024),
            ..opts.clone()
        };
        layout = ExternalLayout::default();
        p = export_model(m, &more, &mut layout)?;
        forced = true;
    } else if unfilled > 0 {
        layout = ExternalLayout::default();
        p = export_model(m, opts, &mut layout)?;
    }
    if p.encoded_len() as u64 > PROTOBUF_LIMIT {
        return Err(OnnxError::Invalid(format!(
            "{}: the model is {} bytes even with external data, past protobuf's 2 GiB limit",
            path.display(),
            p.encoded_len()
        )));
    }
    Ok((p, layout, forced))
}

/// Writes `m` to `path`, its external data (if any) to one file beside it named as
/// `opts` says (`<file name>.data` by default). Nothing is written when that would
/// replace a file other than the output and its own data file
/// ([`crate::targets::check_targets`]). Every file is written to a temporary file in the
/// target folder, synced, and renamed into place only when all of them are complete, so a
/// failure leaves no partial file and never clobbers an existing one.
pub fn save_model(m: &Model, path: &Path, opts: &ExportOptions) -> Result<SaveReport, OnnxError> {
    let mut report = SaveReport::default();
    let (p, layout, forced) = layout_for(m, path, opts)?;
    report.forced_external = forced;
    let locations: Vec<String> = layout.files.keys().cloned().collect();
    crate::targets::check_targets(path, &locations, opts.input.as_ref())?;
    let dir = crate::targets::folder_of(path);
    let mut pending = Vec::new();
    for (location, chunks) in &layout.files {
        let target = resolve(&dir, location).map_err(|reason| OnnxError::External {
            tensor: location.clone(),
            reason,
        })?;
        if target == path {
            return Err(OnnxError::Invalid(format!(
                "external data location '{location}' is the model file itself"
            )));
        }
        let (tmp, len) = write_external(&dir, location, chunks)?;
        report.external_files.push((location.clone(), len));
        pending.push((tmp, target));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".whittle-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| OnnxError::io(&dir, e))?;
    let mut sink = WriteSink::new(EagerWriteback::new(tmp.as_file_mut()));
    p.encode(&mut sink)
        .map_err(|e| OnnxError::Invalid(format!("{}: encoding failed: {e}", path.display())))?;
    let (_, n) = sink.finish().map_err(|e| OnnxError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OnnxError::io(path, e))?;
    set_permissions(tmp.as_file(), path)?;
    report.model_bytes = n;
    for (tmp, target) in pending {
        tmp.persist(&target)
            .map_err(|e| OnnxError::io(&target, e.error))?;
    }
    tmp.persist(path)
        .map_err(|e| OnnxError::io(path, e.error))?;
    Ok(report)
}

/// Writes one external data file to a temporary file: chunks at their offsets, gaps zeroed.
fn write_external(
    dir: &Path,
    location: &str,
    chunks: &[(u64, Piece)],
) -> Result<(tempfile::NamedTempFile, u64), OnnxError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".whittle-")
        .suffix(".data.tmp")
        .tempfile_in(dir)
        .map_err(|e| OnnxError::io(dir, e))?;
    let pos = {
        let mut w = BufWriter::with_capacity(1 << 20, EagerWriteback::new(tmp.as_file_mut()));
        let pos = stream_external(location, chunks, &mut w)?;
        w.flush().map_err(|e| OnnxError::io(location, e))?;
        pos
    };
    tmp.as_file()
        .set_len(pos)
        .map_err(|e| OnnxError::io(location, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OnnxError::io(location, e))?;
    set_permissions(tmp.as_file(), &dir.join(location))?;
    Ok((tmp, pos))
}

/// Writes an external data file's bytes to `w`: chunks at their offsets, gaps zeroed.
/// Deferred tensors are computed here, one at a time, and dropped once written.
/// Returns the file's length.
pub(crate) fn stream_external(
    location: &str,
    chunks: &[(u64, Piece)],
    w: &mut impl Write,
) -> Result<u64, OnnxError> {
    let mut sorted: Vec<&(u64, Piece)> = chunks.iter().collect();
    sorted.sort_by_key(|(o, d)| (*o, d.len()));
    let mut pos = 0u64;
    for (offset, piece) in sorted {
        let end = offset + piece.len();
        if end <= pos {
            continue; // a range already written (tensors sharing storage)
        }
        if *offset < pos {
            return Err(OnnxError::External {
                tensor: location.to_string(),
                reason: format!("tensors overlap at byte {offset}"),
            });
        }
        if *offset > pos {
            // Gaps are bounded: offsets were checked against the input's file size.
            let gap = offset - pos;
            std::io::copy(&mut std::io::Read::take(std::io::repeat(0), gap), w)
                .map_err(|e| OnnxError::io(location, e))?;
        }
        let data = piece.bytes()?;
        // In pieces: once written (or copied into the buffer) a mapped source piece need
        // not stay resident, so a big tensor never is whole.
        const PIECE: usize = 8 << 20;
        for start in (0..data.len()).step_by(PIECE) {
            let piece = data.slice(start..(start + PIECE).min(data.len()));
            w.write_all(&piece)
                .map_err(|e| OnnxError::io(location, e))?;
            crate::mapped::release_pages(&piece);
        }
        pos = end;
    }
    Ok(pos)
}

/// Temporary files are private (0600); give the result the permissions of the file it
/// replaces, or the usual 0644 for a new file.
fn set_permissions(tmp: &std::fs::File, target: &Path) -> Result<(), OnnxError> {
    let perms = match std::fs::metadata(target) {
        Ok(m) => m.permissions(),
        Err(_) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::Permissions::from_mode(0o644)
            }
            #[cfg(not(unix))]
            {
                return Ok(());
            }
        }
    };
    tmp.set_permissions(perms)
        .map_err(|e| OnnxError::io(target, e))
}
