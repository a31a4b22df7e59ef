//! One option type per `--quantize` mode. The same serde types read the keys whether
//! they come from flags, `whittle.toml` or `[package.metadata.whittle]`: a key the mode
//! does not take is an error listing the keys it does, an unknown mode lists the modes
//! (serde derives both lists from these types), and each default is written once, in
//! the type's `Default`.

use serde::{Deserialize, Deserializer, Serialize};
use std::str::FromStr;
use whittle_compress::quant::ranges::Method;
use whittle_compress::quant::{ActScale, DEFAULT_MIN_ELEMENTS, Int4Format};

/// Lossy compression run after the lossless passes (opt-in; it reports its error).
/// `quantize = "MODE"` selects the variant; the other keys are the variant's fields.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "quantize", rename_all = "kebab-case")]
pub enum Quantize {
    /// Weights stored as int8; compute stays float.
    Int8Weights(Int8Weights),
    /// MatMul/Gemm (and Conv) in int8 with activations quantized at run time.
    Int8Dynamic(Int8Dynamic),
    /// QDQ with activation ranges observed on calibration data (required).
    Int8Static(Int8Static),
    /// MatMul/Gemm weights in 4 bits, one scale per block of K rows per column.
    Int4(Int4),
    /// The model computes in float16; float32 inputs and outputs are kept.
    Fp16(Fp16),
    /// Weights stored as float16 behind a Cast to float32.
    Fp16Weights(Fp16Weights),
}

impl Quantize {
    /// `int8-weights` with its defaults.
    pub fn int8_weights() -> Quantize {
        Quantize::Int8Weights(Int8Weights::default())
    }

    /// Checks what serde cannot (ranges of numbers); the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Quantize::Int4(Int4 {
                block_size: BlockSize::Rows(n),
                ..
            }) if !(16..=1 << 20).contains(n) || !n.is_power_of_two() => Err(format!(
                "block-size {n}: expected a power of two, at least 16, or auto"
            )),
            Quantize::Int8Weights(Int8Weights {
                per_tensor: true,
                int8_form: Int8Form::Matmulnbits,
                ..
            }) => {
                Err("per-tensor: 8-bit MatMulNBits is blockwise (use int8-form cast or dq)".into())
            }
            _ => Ok(()),
        }
    }
}

/// How int8-weights reads its weights back (see `steps::int8_form`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Int8Form {
    /// `Cast(int8 → f32) → Mul(scales)`: runtimes fold it to the float weight at load,
    /// so accuracy and speed stay float's.
    Cast,
    /// `DequantizeLinear`: ONNX Runtime rewrites `DequantizeLinear → MatMul` into
    /// MatMulNBits, which quantizes the activations too (less accurate, slower on CPUs).
    Dq,
    /// MatMul/Gemm weights as 8-bit `com.microsoft.MatMulNBits` (blocks of
    /// [`Int8Form::NBITS_BLOCK`] rows), other weights cast: ONNX Runtime reads the int8
    /// weights at run time, so a memory-bound model runs faster (with accuracy level 4).
    Matmulnbits,
    /// Cast, except where ONNX Runtime is the runtime and data run: there cast and
    /// matmulnbits are both timed and judged, and matmulnbits is kept when it is faster
    /// within the budget (the default).
    #[default]
    Auto,
}

impl Int8Form {
    /// Rows of K per scale of 8-bit MatMulNBits.
    pub const NBITS_BLOCK: u64 = 128;
}

/// `int8-weights`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Int8Weights {
    /// One scale per tensor instead of per output channel.
    pub per_tensor: bool,
    /// Weights with fewer elements stay float.
    pub min_elements: u64,
    /// How the weights are read back.
    pub int8_form: Int8Form,
    /// 8-bit MatMulNBits' accuracy_level: a level, or measured (`auto`).
    #[serde(deserialize_with = "parsed")]
    pub accuracy_level: AccuracyLevel,
}

impl Default for Int8Weights {
    fn default() -> Self {
        Int8Weights {
            per_tensor: false,
            min_elements: DEFAULT_MIN_ELEMENTS,
            int8_form: Int8Form::default(),
            accuracy_level: AccuracyLevel::Auto,
        }
    }
}

/// An op type int8-dynamic can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum DynamicOp {
    MatMul,
    Gemm,
    /// As ConvInteger.
    Conv,
}

impl DynamicOp {
    /// The ONNX op type.
    pub fn op_type(self) -> &'static str {
        match self {
            DynamicOp::MatMul => "MatMul",
            DynamicOp::Gemm => "Gemm",
            DynamicOp::Conv => "Conv",
        }
    }
}

/// `int8-dynamic`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Int8Dynamic {
    /// Weights with fewer elements stay float.
    pub min_elements: u64,
    /// Weights use all of [−127, 127] (else [−64, 64], which no x86 kernel saturates).
    pub full_range: bool,
    /// The op types taken.
    pub ops: Vec<DynamicOp>,
    /// One activation scale per row (default), per tensor, or per tensor except where
    /// the budget needs rows (auto).
    #[serde(deserialize_with = "parsed")]
    pub act_scale: ActScale,
}

impl Default for Int8Dynamic {
    fn default() -> Self {
        Int8Dynamic {
            min_elements: DEFAULT_MIN_ELEMENTS,
            full_range: false,
            ops: vec![DynamicOp::MatMul, DynamicOp::Gemm],
            act_scale: ActScale::default(),
        }
    }
}

/// `int8-static` (needs `calibrate`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Int8Static {
    /// One weight scale per tensor instead of per output channel.
    pub per_tensor: bool,
    /// Weights with fewer elements stay float (default 0: every layer, as activations
    /// are quantized anyway).
    pub min_elements: u64,
    /// How each activation's range is chosen from what calibration saw.
    #[serde(deserialize_with = "parsed")]
    pub calibration: Method,
    /// Weights use all of [−127, 127] (else [−64, 64]).
    pub full_range: bool,
}

impl Default for Int8Static {
    fn default() -> Self {
        Int8Static {
            per_tensor: false,
            min_elements: 0,
            calibration: Method::MinMax,
            full_range: false,
        }
    }
}

/// `int4`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Int4 {
    /// Rows of K per scale (a power of two, at least 16), or measured (`auto`).
    pub block_size: BlockSize,
    /// Blocked DequantizeLinear (`dq`, opset ≥ 21) or com.microsoft MatMulNBits.
    #[serde(deserialize_with = "parsed")]
    pub int4_format: Int4Format,
    /// Weights with fewer elements stay float.
    pub min_elements: u64,
    /// MatMulNBits' accuracy_level: a level, or measured (`auto`).
    #[serde(deserialize_with = "parsed")]
    pub accuracy_level: AccuracyLevel,
}

impl Default for Int4 {
    fn default() -> Self {
        Int4 {
            block_size: BlockSize::Auto,
            int4_format: Int4Format::DequantizeLinear,
            min_elements: DEFAULT_MIN_ELEMENTS,
            accuracy_level: AccuracyLevel::Auto,
        }
    }
}

/// int4's rows of K per scale (see `steps::int4_block`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BlockSize {
    /// 32; in ONNX Runtime with data to run, each of
    /// [`BlockSize::MEASURED`] quantized, timed and judged, and the fastest kept that
    /// stays within the budget.
    #[default]
    Auto,
    /// This many rows.
    Rows(u64),
}

impl BlockSize {
    /// The size `auto` means where nothing is measured.
    pub const UNMEASURED: u64 = 32;
    /// The sizes `auto` measures, the first the reference.
    pub const MEASURED: [u64; 3] = [32, 64, 128];
}

impl FromStr for BlockSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BlockSize::Auto),
            _ => s
                .parse()
                .map(BlockSize::Rows)
                .map_err(|_| format!("block-size '{s}': expected a power of two or auto")),
        }
    }
}

impl Serialize for BlockSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BlockSize::Auto => s.serialize_str("auto"),
            BlockSize::Rows(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for BlockSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A number of rows, or "auto".
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Rows(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Rows(n) => Ok(BlockSize::Rows(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// MatMulNBits' `accuracy_level` (see `steps::int4_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccuracyLevel {
    /// Measured in ONNX Runtime (left unset with tract).
    #[default]
    Auto,
    /// This level (0 to 4).
    Level(u8),
}

impl FromStr for AccuracyLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AccuracyLevel::Auto),
            _ => match s.parse::<u8>() {
                Ok(l) if l <= 4 => Ok(AccuracyLevel::Level(l)),
                _ => Err(format!("accuracy-level '{s}': expected 0 to 4 or auto")),
            },
        }
    }
}

/// `fp16`: every value converts, so it takes no keys.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fp16 {}

/// `fp16-weights`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Fp16Weights {
    /// Weights with fewer elements stay float32.
    pub min_elements: u64,
}

impl Default for Fp16Weights {
    fn default() -> Self {
        Fp16Weights {
            min_elements: DEFAULT_MIN_ELEMENTS,
        }
    }
}

/// A value read as a string and parsed with its `FromStr` (whose message names the
/// accepted forms).
fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}
