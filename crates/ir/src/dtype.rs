//! ONNX element types.

use std::fmt;

/// An ONNX tensor element type (`TensorProto.DataType`). Codes outside the known range
/// are kept as [`DataType::Other`] so that files from newer exporters still pass through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Undefined,
    Float,
    Uint8,
    Int8,
    Uint16,
    Int16,
    Int32,
    Int64,
    String,
    Bool,
    Float16,
    Double,
    Uint32,
    Uint64,
    Complex64,
    Complex128,
    Bfloat16,
    Float8E4M3Fn,
    Float8E4M3Fnuz,
    Float8E5M2,
    Float8E5M2Fnuz,
    Uint4,
    Int4,
    Float4E2M1,
    /// A code this version of whittle does not know.
    Other(i32),
}

/// (code, variant, name) for every known type, in code order.
const TABLE: [(i32, DataType, &str); 24] = [
    (0, DataType::Undefined, "undefined"),
    (1, DataType::Float, "f32"),
    (2, DataType::Uint8, "u8"),
    (3, DataType::Int8, "i8"),
    (4, DataType::Uint16, "u16"),
    (5, DataType::Int16, "i16"),
    (6, DataType::Int32, "i32"),
    (7, DataType::Int64, "i64"),
    (8, DataType::String, "string"),
    (9, DataType::Bool, "bool"),
    (10, DataType::Float16, "f16"),
    (11, DataType::Double, "f64"),
    (12, DataType::Uint32, "u32"),
    (13, DataType::Uint64, "u64"),
    (14, DataType::Complex64, "c64"),
    (15, DataType::Complex128, "c128"),
    (16, DataType::Bfloat16, "bf16"),
    (17, DataType::Float8E4M3Fn, "f8e4m3fn"),
    (18, DataType::Float8E4M3Fnuz, "f8e4m3fnuz"),
    (19, DataType::Float8E5M2, "f8e5m2"),
    (20, DataType::Float8E5M2Fnuz, "f8e5m2fnuz"),
    (21, DataType::Uint4, "u4"),
    (22, DataType::Int4, "i4"),
    (23, DataType::Float4E2M1, "f4e2m1"),
];

impl DataType {
    /// The type with ONNX code `code`.
    pub fn from_code(code: i32) -> DataType {
        usize::try_from(code)
            .ok()
            .and_then(|i| TABLE.get(i))
            .map_or(DataType::Other(code), |e| e.1)
    }

    /// The ONNX code of this type.
    pub fn code(self) -> i32 {
        match self {
            DataType::Other(c) => c,
            t => TABLE.iter().find(|e| e.1 == t).map_or(0, |e| e.0),
        }
    }

    /// The short name used by `whittle dump` (`f32`, `i64`, ...).
    pub fn short_name(self) -> String {
        match self {
            DataType::Other(c) => format!("dtype{c}"),
            t => TABLE
                .iter()
                .find(|e| e.1 == t)
                .map_or_else(String::new, |e| e.2.to_string()),
        }
    }

    /// Parses a short name back (the inverse of [`DataType::short_name`]).
    pub fn from_short_name(name: &str) -> Option<DataType> {
        if let Some(code) = name.strip_prefix("dtype") {
            return code.parse().ok().map(DataType::Other);
        }
        TABLE.iter().find(|e| e.2 == name).map(|e| e.1)
    }

    /// Size of one element in bits, for fixed-size types (None for strings and unknown codes).
    pub fn bit_width(self) -> Option<u64> {
        use DataType::*;
        Some(match self {
            Bool | Uint8 | Int8 | Float8E4M3Fn | Float8E4M3Fnuz | Float8E5M2 | Float8E5M2Fnuz => 8,
            Uint16 | Int16 | Float16 | Bfloat16 => 16,
            Float | Int32 | Uint32 => 32,
            Int64 | Uint64 | Double | Complex64 => 64,
            Complex128 => 128,
            Uint4 | Int4 | Float4E2M1 => 4,
            Undefined | String | Other(_) => return None,
        })
    }

    /// Bytes needed to store `count` elements in `raw_data` (4-bit types pack two per byte).
    pub fn storage_bytes(self, count: u64) -> Option<u64> {
        let bits = self.bit_width()?;
        count.checked_mul(bits).map(|b| b.div_ceil(8))
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        use DataType::*;
        matches!(
            self,
            Float
                | Double
                | Float16
                | Bfloat16
                | Float8E4M3Fn
                | Float8E4M3Fnuz
                | Float8E5M2
                | Float8E5M2Fnuz
                | Float4E2M1
        )
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for code in -1..30 {
            let t = DataType::from_code(code);
            assert_eq!(t.code(), code);
            assert_eq!(DataType::from_short_name(&t.short_name()), Some(t));
        }
    }

    #[test]
    fn storage_of_packed_types() {
        assert_eq!(DataType::Int4.storage_bytes(3), Some(2));
        assert_eq!(DataType::Float.storage_bytes(3), Some(12));
        assert_eq!(DataType::Float.storage_bytes(u64::MAX), None);
        assert_eq!(DataType::String.storage_bytes(1), None);
    }
}
