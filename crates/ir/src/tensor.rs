//! Constant tensors: initializers and tensor attributes.

use crate::deferred::Deferred;
use crate::dtype::DataType;
use crate::error::IrError;
use crate::meta::StringPair;
use bytes::Bytes;

/// A constant tensor, holding its elements in whichever encoding the file used so that an
/// untouched tensor is written back exactly as it was read (raw bytes, typed fields, or a
/// reference to an external file). Raw and external bytes are zero-copy views of the file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Tensor {
    pub name: Option<String>,
    pub dims: Vec<i64>,
    /// ONNX element type code (kept as written; see [`Tensor::dtype`]).
    pub data_type: Option<i32>,
    pub segment: Option<Segment>,
    pub data: TensorData,
    pub doc_string: Option<String>,
    /// `external_data` entries exactly as written (`location`, `offset`, `length`, ...).
    pub external_data: Vec<StringPair>,
    pub data_location: Option<i32>,
    pub metadata_props: Vec<StringPair>,
    /// The bytes an external reference points at, loaded (memory-mapped) at import.
    pub external_bytes: Option<Bytes>,
}

/// Told when a tensor's bytes are no longer needed by the graph.
static RELEASE_HOOK: std::sync::OnceLock<fn(&Bytes)> = std::sync::OnceLock::new();

/// Registers the function told when the graph drops a tensor's bytes (whittle-onnx
/// installs one that returns memory-mapped pages to the OS). The first registration wins.
pub fn set_release_hook(f: fn(&Bytes)) {
    let _ = RELEASE_HOOK.set(f);
}

/// Tells the storage owner (see [`set_release_hook`]) that `bytes`, a view of a tensor's
/// storage, will not be read again soon (a deferred encoding has read its source).
pub fn release_bytes(bytes: &Bytes) {
    if let Some(hook) = RELEASE_HOOK.get() {
        hook(bytes);
    }
}

/// `TensorProto.Segment`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Segment {
    pub begin: Option<i64>,
    pub end: Option<i64>,
}

/// The element fields of a tensor, as present in the file. Normally only one is used.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TensorData {
    pub raw: Option<Bytes>,
    pub floats: Vec<f32>,
    pub int32s: Vec<i32>,
    pub strings: Vec<Bytes>,
    pub int64s: Vec<i64>,
    pub doubles: Vec<f64>,
    pub uint64s: Vec<u64>,
    /// Bytes computed when read (a lossy step's encoding; see [`crate::deferred`]).
    /// Export writes them to external data without holding them.
    pub deferred: Option<Deferred>,
}

/// `data_location` value for tensors stored in an external file.
pub const DATA_LOCATION_EXTERNAL: i32 = 1;

impl Tensor {
    /// A tensor of `dtype` and `dims` holding little-endian `raw` bytes.
    pub fn from_raw(dtype: DataType, dims: Vec<i64>, raw: Bytes) -> Tensor {
        Tensor {
            dims,
            data_type: Some(dtype.code()),
            data: TensorData {
                raw: Some(raw),
                ..TensorData::default()
            },
            ..Tensor::default()
        }
    }

    /// A tensor of `dtype` and `dims` whose little-endian bytes `data` computes when read.
    pub fn from_deferred(dtype: DataType, dims: Vec<i64>, data: Deferred) -> Tensor {
        Tensor {
            dims,
            data_type: Some(dtype.code()),
            data: TensorData {
                deferred: Some(data),
                ..TensorData::default()
            },
            ..Tensor::default()
        }
    }

    /// The deferred encoding, when the bytes are computed on read.
    pub fn deferred(&self) -> Option<&Deferred> {
        self.data.deferred.as_ref()
    }

    /// A float tensor.
    pub fn from_f32(dims: Vec<i64>, values: &[f32]) -> Tensor {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor::from_raw(DataType::Float, dims, Bytes::from(raw))
    }

    /// An int64 tensor.
    pub fn from_i64(dims: Vec<i64>, values: &[i64]) -> Tensor {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor::from_raw(DataType::Int64, dims, Bytes::from(raw))
    }

    /// The name, or "" when absent.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// Tells the storage owner (see [`set_release_hook`]) that the graph no longer needs
    /// this tensor's bytes. The tensor stays readable.
    pub fn release(&self) {
        for b in [&self.data.raw, &self.external_bytes].into_iter().flatten() {
            release_bytes(b);
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DataType {
        DataType::from_code(self.data_type.unwrap_or(0))
    }

    /// True when the data lives in an external file.
    pub fn is_external(&self) -> bool {
        self.data_location == Some(DATA_LOCATION_EXTERNAL)
    }

    /// The number of elements the dims describe, or an error on a negative dim or overflow.
    pub fn element_count(&self) -> Result<u64, IrError> {
        self.dims.iter().try_fold(1u64, |acc, &d| {
            let d = u64::try_from(d).map_err(|_| IrError::BadTensor {
                tensor: self.name().to_string(),
                reason: format!("negative dimension {d}"),
            })?;
            acc.checked_mul(d).ok_or_else(|| IrError::BadTensor {
                tensor: self.name().to_string(),
                reason: "element count overflows".into(),
            })
        })
    }

    /// Checks that the data present is exactly what the dims and element type call for
    /// (raw, external or typed fields). Run on every tensor read from a file, so nothing
    /// later trusts a declared size the bytes do not back. Reads no data.
    pub fn check_size(&self) -> Result<(), IrError> {
        let dtype = self.dtype();
        let count = self.element_count()?;
        if self.segment.is_some() || matches!(dtype, DataType::Undefined | DataType::Other(_)) {
            return Ok(()); // segments and unknown types are carried, never interpreted
        }
        let bad = |reason: String| IrError::BadTensor {
            tensor: self.name().to_string(),
            reason,
        };
        if dtype == DataType::String {
            let n = self.data.strings.len() as u64;
            return match n == count || self.is_external() {
                true => Ok(()),
                false => Err(bad(format!(
                    "dims {:?} call for {count} strings but it holds {n}",
                    self.dims
                ))),
            };
        }
        let want = dtype
            .storage_bytes(count)
            .ok_or_else(|| bad(format!("{count} elements of {dtype} overflow")))?;
        let have = self.present_bytes(dtype);
        if have != want {
            return Err(bad(format!(
                "dims {:?} of {dtype} need {want} bytes but the data holds {have}",
                self.dims
            )));
        }
        Ok(())
    }

    /// Bytes of element data present, in storage form (what `le_bytes` would return).
    fn present_bytes(&self, dtype: DataType) -> u64 {
        use DataType::*;
        if let Some(b) = self.external_bytes.as_ref().or(self.data.raw.as_ref()) {
            return b.len() as u64;
        }
        if let Some(d) = &self.data.deferred {
            return d.len();
        }
        let d = &self.data;
        let n = |len: usize, w: u64| len as u64 * w;
        match dtype {
            Float | Complex64 => n(d.floats.len(), 4),
            Double | Complex128 => n(d.doubles.len(), 8),
            Int64 => n(d.int64s.len(), 8),
            Uint32 => n(d.uint64s.len(), 4),
            Uint64 => n(d.uint64s.len(), 8),
            Int32 => n(d.int32s.len(), 4),
            Int16 | Uint16 | Float16 | Bfloat16 => n(d.int32s.len(), 2),
            _ => n(d.int32s.len(), 1),
        }
    }

    /// The external-data entry for `key` (`location`, `offset`, `length`, `checksum`).
    pub fn external_entry(&self, key: &str) -> Option<&str> {
        self.external_data
            .iter()
            .find(|e| e.key() == key)
            .map(|e| e.value())
    }

    /// Size in bytes of the element data as stored (raw, typed fields or external), used
    /// for reports and size thresholds; it reads no data.
    pub fn stored_bytes(&self) -> u64 {
        if let Some(b) = &self.external_bytes {
            return b.len() as u64;
        }
        if let Some(d) = &self.data.deferred {
            return d.len();
        }
        let d = &self.data;
        let raw = d.raw.as_ref().map_or(0, |r| r.len());
        let typed = d.floats.len() * 4
            + d.int32s.len() * 4
            + d.int64s.len() * 8
            + d.doubles.len() * 8
            + d.uint64s.len() * 8
            + d.strings.iter().map(|s| s.len()).sum::<usize>();
        (raw + typed) as u64
    }

    /// The little-endian bytes of a fixed-size tensor, whatever the encoding: raw and
    /// external data are returned without copying; typed fields are converted.
    pub fn le_bytes(&self) -> Result<Bytes, IrError> {
        let bad = |reason: String| IrError::BadTensor {
            tensor: self.name().to_string(),
            reason,
        };
        let dtype = self.dtype();
        let count = self.element_count()?;
        let want = dtype
            .storage_bytes(count)
            .ok_or_else(|| bad(format!("element type {dtype} has no fixed size")))?;
        let bytes = if let Some(b) = self
            .external_bytes
            .clone()
            .or_else(|| self.data.raw.clone())
        {
            b
        } else if let Some(d) = &self.data.deferred {
            d.bytes(self.name())?
        } else {
            self.typed_to_le(dtype)?
        };
        if bytes.len() as u64 != want {
            return Err(bad(format!(
                "holds {} bytes but {:?} of {dtype} need {want}",
                bytes.len(),
                self.dims
            )));
        }
        Ok(bytes)
    }

    /// Converts the typed fields to little-endian storage for `dtype`, following the
    /// ONNX rules for which field holds which type.
    fn typed_to_le(&self, dtype: DataType) -> Result<Bytes, IrError> {
        use DataType::*;
        let d = &self.data;
        let mut out: Vec<u8> = Vec::new();
        match dtype {
            Float | Complex64 => d.floats.iter().for_each(|v| out.extend(v.to_le_bytes())),
            Double | Complex128 => d.doubles.iter().for_each(|v| out.extend(v.to_le_bytes())),
            Int64 => d.int64s.iter().for_each(|v| out.extend(v.to_le_bytes())),
            Uint32 | Uint64 => {
                let w = if dtype == Uint32 { 4 } else { 8 };
                d.uint64s
                    .iter()
                    .for_each(|v| out.extend(&v.to_le_bytes()[..w]))
            }
            Int32 => d.int32s.iter().for_each(|v| out.extend(v.to_le_bytes())),
            Int16 | Uint16 | Float16 | Bfloat16 => d
                .int32s
                .iter()
                .for_each(|v| out.extend(&(*v as u16).to_le_bytes())),
            Int8 | Uint8 | Bool | Float8E4M3Fn | Float8E4M3Fnuz | Float8E5M2 | Float8E5M2Fnuz => {
                d.int32s.iter().for_each(|v| out.push(*v as u8))
            }
            Int4 | Uint4 | Float4E2M1 => d.int32s.iter().for_each(|v| out.push(*v as u8)),
            String | Undefined | Other(_) => {
                return Err(IrError::BadTensor {
                    tensor: self.name().to_string(),
                    reason: format!("element type {dtype} has no fixed size"),
                });
            }
        }
        Ok(Bytes::from(out))
    }

    /// The elements as f32 (for float, f16, double and integer tensors), for passes and
    /// folding. Errors on types that have no faithful f32 view.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, IrError> {
        let b = self.le_bytes()?;
        let v = match self.dtype() {
            DataType::Float => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DataType::Double => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            t => {
                return Err(IrError::BadTensor {
                    tensor: self.name().to_string(),
                    reason: format!("no f32 view of {t}"),
                });
            }
        };
        Ok(v)
    }

    /// The elements as i64 (int64, int32, int8 and uint8 tensors), e.g. shapes and axes,
    /// or quantized values.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, IrError> {
        let b = self.le_bytes()?;
        let v = match self.dtype() {
            DataType::Int64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            DataType::Int32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            DataType::Int8 => b.iter().map(|x| i64::from(*x as i8)).collect(),
            DataType::Uint8 => b.iter().map(|x| i64::from(*x)).collect(),
            t => {
                return Err(IrError::BadTensor {
                    tensor: self.name().to_string(),
                    reason: format!("no integer view of {t}"),
                });
            }
        };
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_and_raw_agree() {
        let raw = Tensor::from_f32(vec![2], &[1.5, -2.0]);
        let typed = Tensor {
            dims: vec![2],
            data_type: Some(DataType::Float.code()),
            data: TensorData {
                floats: vec![1.5, -2.0],
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(raw.le_bytes().unwrap(), typed.le_bytes().unwrap());
        assert_eq!(typed.to_f32_vec().unwrap(), vec![1.5, -2.0]);
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let t = Tensor::from_raw(DataType::Float, vec![1 << 40], Bytes::from_static(&[0; 4]));
        assert!(t.le_bytes().is_err());
        let neg = Tensor::from_raw(DataType::Float, vec![-1], Bytes::new());
        assert!(neg.element_count().is_err());
        let huge = Tensor::from_raw(DataType::Float, vec![i64::MAX, i64::MAX], Bytes::new());
        assert!(huge.element_count().is_err());
    }
}
