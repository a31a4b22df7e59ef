//! Tensor elements as text, and back.

use crate::dtype::DataType;
use crate::error::IrError;
use crate::tensor::{Tensor, TensorData};
use bytes::Bytes;
use half::{bf16, f16};

/// One literal element as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Int(i64),
    /// Kept as text so each float type parses it at its own precision.
    Float(String),
    Bool(bool),
    Str(Vec<u8>),
}

/// The elements of `t` as `[a, b, c]`, or the first `max` then `...` (elided).
pub fn format_values(t: &Tensor, max: Option<usize>) -> String {
    let n = match t.element_count() {
        Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
        Err(_) => return "[...]".into(),
    };
    let shown = max.map_or(n, |m| m.min(n));
    // Only the elements shown are read and formatted: a listing of a large model must
    // not touch the rest of its weights.
    let mut parts = match elements(t, shown) {
        Ok(v) => v,
        Err(_) => return "[...]".into(),
    };
    if shown < n {
        parts.push("...".into());
    }
    format!("[{}]", parts.join(", "))
}

/// The first `take` elements of `t` formatted by its type; floats in shortest
/// round-trip form.
fn elements(t: &Tensor, take: usize) -> Result<Vec<String>, IrError> {
    use DataType::*;
    let dt = t.dtype();
    if dt == String {
        return Ok(t.data.strings.iter().take(take).map(|s| quote(s)).collect());
    }
    let all = t.le_bytes()?;
    let size = dt.storage_bytes(1).unwrap_or(1) as usize;
    let b = &all[..all.len().min(take.saturating_mul(size))];
    let f32s = |x: f32| format!("{x:?}");
    Ok(match dt {
        Float => b
            .chunks_exact(4)
            .map(|c| f32s(f32::from_le_bytes(arr(c))))
            .collect(),
        Double => b
            .chunks_exact(8)
            .map(|c| format!("{:?}", f64::from_le_bytes(arr(c))))
            .collect(),
        Float16 => b
            .chunks_exact(2)
            .map(|c| f32s(f16::from_le_bytes(arr(c)).to_f32()))
            .collect(),
        Bfloat16 => b
            .chunks_exact(2)
            .map(|c| f32s(bf16::from_le_bytes(arr(c)).to_f32()))
            .collect(),
        Int8 => b.iter().map(|x| (*x as i8).to_string()).collect(),
        Uint8 => b.iter().map(|x| x.to_string()).collect(),
        Bool => b.iter().map(|x| (*x != 0).to_string()).collect(),
        Int16 => b
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes(arr(c)).to_string())
            .collect(),
        Uint16 => b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes(arr(c)).to_string())
            .collect(),
        Int32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(arr(c)).to_string())
            .collect(),
        Uint32 => b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(arr(c)).to_string())
            .collect(),
        Int64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(arr(c)).to_string())
            .collect(),
        Uint64 => b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(arr(c)).to_string())
            .collect(),
        _ => {
            return Err(IrError::BadTensor {
                tensor: t.name().into(),
                reason: format!("no text form for {dt}"),
            });
        }
    })
}

fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&c[..N]);
    a
}

/// A double-quoted string with `\"`, `\\`, `\n`, `\t` and `\xNN` escapes.
pub fn quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in s {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// Most elements a `random` or elided constant is filled with (a listing is for tests
/// and reading; a typo must not ask for terabytes).
pub const MAX_FILLED: u64 = 1 << 24;

/// Builds a tensor of `dtype` and `dims` from literals; when `elided`, the elements not
/// written are filled with deterministic pseudo-random values seeded by `name`.
pub fn build_tensor(
    name: &str,
    dtype: DataType,
    dims: Vec<i64>,
    lits: &[Lit],
    elided: bool,
) -> Result<Tensor, String> {
    let mut t = Tensor {
        name: Some(name.to_string()),
        dims,
        data_type: Some(dtype.code()),
        ..Tensor::default()
    };
    let count = t.element_count().map_err(|e| e.to_string())?;
    if elided && count > MAX_FILLED {
        return Err(format!(
            "tensor '{name}': {count} elements to fill; the text form fills at most {MAX_FILLED}"
        ));
    }
    let count = count as usize;
    if lits.len() > count || (!elided && lits.len() != count) {
        return Err(format!(
            "tensor '{name}' has {} values for {count} elements",
            lits.len()
        ));
    }
    let mut rng = Rng::seeded(name);
    if dtype == DataType::String {
        let mut v: Vec<Bytes> = Vec::with_capacity(count);
        for (i, _) in (0..count).enumerate() {
            v.push(match lits.get(i) {
                Some(Lit::Str(s)) => Bytes::from(s.clone()),
                Some(_) => return Err(format!("tensor '{name}': string tensors hold strings")),
                None => Bytes::from(format!("s{}", rng.next() % 100)),
            });
        }
        t.data = TensorData {
            strings: v,
            ..TensorData::default()
        };
        return Ok(t);
    }
    let width = dtype
        .storage_bytes(1)
        .filter(|_| dtype.bit_width().unwrap_or(0) >= 8)
        .ok_or_else(|| format!("tensor '{name}': {dtype} has no text form"))?;
    let mut raw: Vec<u8> = Vec::with_capacity(count * width as usize);
    for i in 0..count {
        let lit = match lits.get(i) {
            Some(l) => l.clone(),
            None if dtype.is_float() => Lit::Float(format!("{:?}", rng.unit() as f32)),
            None if dtype == DataType::Bool => Lit::Bool(rng.next() % 2 == 1),
            None => Lit::Int((rng.next() % 8) as i64),
        };
        push_elem(&mut raw, dtype, &lit)
            .map_err(|e| format!("tensor '{name}' element {i}: {e}"))?;
    }
    t.data = TensorData {
        raw: Some(Bytes::from(raw)),
        ..TensorData::default()
    };
    Ok(t)
}

fn push_elem(out: &mut Vec<u8>, dt: DataType, lit: &Lit) -> Result<(), String> {
    use DataType::*;
    let text = match lit {
        Lit::Int(i) => i.to_string(),
        Lit::Float(s) => s.clone(),
        Lit::Bool(b) => (*b as i64).to_string(),
        Lit::Str(_) => return Err("a string in a numeric tensor".into()),
    };
    let f32v = || {
        text.parse::<f32>()
            .map_err(|_| format!("'{text}' is not a number"))
    };
    let int = || match lit {
        Lit::Int(i) => Ok(*i),
        Lit::Bool(b) => Ok(*b as i64),
        _ => Err(format!("{text} is not an integer")),
    };
    let fits = |lo: i64, hi: i64| -> Result<i64, std::string::String> {
        let v = int()?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} does not fit {dt}"))
        }
    };
    match dt {
        Float => out.extend(f32v()?.to_le_bytes()),
        Double => out.extend(
            text.parse::<f64>()
                .map_err(|_| format!("'{text}' is not a number"))?
                .to_le_bytes(),
        ),
        Float16 => out.extend(f16::from_f32(f32v()?).to_le_bytes()),
        Bfloat16 => out.extend(bf16::from_f32(f32v()?).to_le_bytes()),
        Bool => out.push(u8::from(fits(0, 1)? != 0)),
        Int8 => out.push(fits(i8::MIN as i64, i8::MAX as i64)? as i8 as u8),
        Uint8 => out.push(fits(0, u8::MAX as i64)? as u8),
        Int16 => out.extend((fits(i16::MIN as i64, i16::MAX as i64)? as i16).to_le_bytes()),
        Uint16 => out.extend((fits(0, u16::MAX as i64)? as u16).to_le_bytes()),
        Int32 => out.extend((fits(i32::MIN as i64, i32::MAX as i64)? as i32).to_le_bytes()),
        Uint32 => out.extend((fits(0, u32::MAX as i64)? as u32).to_le_bytes()),
        Int64 => out.extend(int()?.to_le_bytes()),
        Uint64 => out.extend((fits(0, i64::MAX)? as u64).to_le_bytes()),
        _ => return Err(format!("{dt} has no text form")),
    }
    Ok(())
}

/// A small deterministic generator (xorshift64*) for elided tensor contents.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        // FNV-1a of the name: the same text always parses to the same tensor.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::format_values;
    use crate::Tensor;

    #[test]
    fn only_the_shown_values_are_formatted_and_the_rest_elided() {
        let values: Vec<f32> = (0..10).map(|i| i as f32 * 0.5).collect();
        let t = Tensor::from_f32(vec![2, 5], &values);
        assert_eq!(format_values(&t, Some(3)), "[0.0, 0.5, 1.0, ...]");
        assert_eq!(format_values(&t, Some(10)), format_values(&t, None));
        assert_eq!(format_values(&t, Some(50)).matches(", ").count(), 9);
        assert!(!format_values(&t, Some(50)).contains("..."));
        assert_eq!(format_values(&t, Some(0)), "[...]");
        // A large tensor lists its first values without reading the rest (formatting
        // 2^24 elements here would take seconds in a debug build).
        let big = Tensor::from_f32(vec![1 << 24], &vec![1.5; 1 << 24]);
        assert_eq!(format_values(&big, Some(2)), "[1.5, 1.5, ...]");
    }
}
