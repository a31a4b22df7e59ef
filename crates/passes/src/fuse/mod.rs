//! Operator fusion (standard ONNX ops only): fewer nodes computing the same values.

mod conv_bn;
mod gemm;
mod reshape;
mod transpose;
mod unsqueeze;

pub use conv_bn::ConvBatchNorm;
pub use gemm::MatMulAddToGemm;
pub use reshape::ReshapeChain;
pub use transpose::TransposeChain;
pub use unsqueeze::UnsqueezeChain;
