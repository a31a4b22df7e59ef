//! Operator fusion (standard ONNX ops only): fewer nodes computing the same values.

mod activation;
mod batchnorm;
mod chains;
mod conv_affine;
mod conv_bn;
mod gelu;
mod gemm;
mod gemm_bn;
mod layernorm;
mod pad_conv;
mod reduce;
mod reshape;
mod transpose;
mod unsqueeze;

pub use activation::{LogSoftmax, WhereNot};
pub use chains::{FlattenChain, Idempotent, SliceChain, SqueezeChain, TransposeIntoGemm};
pub use conv_affine::ConvAffine;
pub use conv_bn::ConvBatchNorm;
pub use gelu::GeluErf;
pub use gemm::MatMulAddToGemm;
pub use gemm_bn::GemmBatchNorm;
pub use layernorm::LayerNormPattern;
pub use pad_conv::PadIntoConv;
pub use reduce::{ConcatChain, ReduceUnsqueeze};
pub use reshape::ReshapeChain;
pub use transpose::TransposeChain;
pub use unsqueeze::UnsqueezeChain;
