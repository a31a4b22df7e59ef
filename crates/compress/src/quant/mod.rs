//! Weight quantization (opt-in, lossy: its passes' [`whittle_passes::Pass::phase`] is `Lossy`).
//!
//! `int8-weights`: constant float weights of MatMul, Gemm, Conv, ConvTranspose and
//! embedding Gathers are stored as int8 (symmetric, per output channel by default) behind
//! a standard `DequantizeLinear`; compute stays float. Embedding tables are gathered as
//! int8 rows and dequantized afterwards, never dequantized whole.
//!
//! `fp16-weights`: the same weights stored as float16 behind a `Cast` to float32.
//!
//! `fp16`: the whole model computes in float16, float32 inputs and outputs kept.
//!
//! `int4`: MatMul/Gemm weights in 4 bits, blockwise ([`int4`]).
//!
//! `int8-dynamic`: MatMul/Gemm as `DynamicQuantizeLinear → MatMulInteger → Cast → Mul`,
//! computing in integers (for speed on CPUs); activations scaled per row first by default
//! ([`dynamic`]).
//!
//! `int8-static`: Conv/MatMul/Gemm in the QDQ format — activations quantized (uint8) with
//! ranges observed on calibration data ([`ranges`]), weights int8 per channel, biases
//! int32 ([`qdq`]).

pub mod act_scale;
pub mod budget;
mod conv_integer;
mod dense;
pub mod dynamic;
mod error;
pub mod fp16;
pub mod fp16_compute;
pub mod gptq;
pub mod int4;
pub mod int4_pack;
pub mod math;
pub mod qdq;
pub mod ranges;
pub mod weights;

pub use error::QuantError;

/// Weights with fewer elements than this stay float unless a mode is told otherwise:
/// their bytes do not matter, their error might.
pub const DEFAULT_MIN_ELEMENTS: u64 = 1024;

pub use dynamic::{ActScale, DynamicInt8};
pub use fp16::Fp16Weights;
pub use fp16_compute::Fp16Compute;
pub use int4::{Int4Format, QuantizeInt4};
pub use weights::QuantizeWeights;
