//! Operator fusion (standard ONNX ops only): fewer nodes computing the same values.

mod activation;
mod attention;
mod batchnorm;
mod chains;
mod conv_affine;
mod conv_bn;
mod conv_input_scale;
mod gelu;
mod gemm;
mod gemm_bn;
mod gemm_flatten;
mod layernorm;
mod pad_conv;
mod reduce;
mod reshape;
mod reshape_around;
mod rmsnorm;
mod rotary;
mod swish;
mod transpose;
mod unsqueeze;

pub use activation::{LogSoftmax, WhereNot};
pub use attention::AttentionPattern;
pub use chains::{FlattenChain, Idempotent, SliceChain, SqueezeChain, TransposeIntoGemm};
pub use conv_affine::ConvAffine;
pub use conv_bn::ConvBatchNorm;
pub use conv_input_scale::ConvInputScale;
pub use gelu::GeluErf;
pub use gemm::MatMulAddToGemm;
pub use gemm_bn::GemmBatchNorm;
pub use gemm_flatten::MatMulAddFlatten;
pub use layernorm::LayerNormPattern;
pub use pad_conv::PadIntoConv;
pub use reduce::{ConcatChain, ReduceUnsqueeze};
pub use reshape::ReshapeChain;
pub use reshape_around::ReshapeAroundElementwise;
pub use rmsnorm::RmsNormPattern;
pub use rotary::RotaryPattern;
pub use swish::SwishPattern;
pub use transpose::{TransposeChain, TransposeUnitAxes};
pub use unsqueeze::UnsqueezeChain;

/// The fusion rules that are off by default (measured slower in some runtime), by name.
pub fn opt_in_rules() -> Vec<&'static str> {
    rules()
        .iter()
        .filter(|r| !r.default_on())
        .map(|r| r.name())
        .collect()
}

/// The rules of the `fuse` pass, in the order they are tried at each node.
pub fn rules() -> Vec<Box<dyn crate::rule::Rule>> {
    vec![
        Box::new(ConvBatchNorm),
        Box::new(GemmBatchNorm),
        Box::new(ConvAffine),
        Box::new(PadIntoConv),
        Box::new(MatMulAddToGemm),
        Box::new(MatMulAddFlatten),
        Box::new(TransposeChain),
        Box::new(TransposeUnitAxes),
        Box::new(ReshapeChain),
        Box::new(ReshapeAroundElementwise),
        Box::new(UnsqueezeChain),
        Box::new(ReduceUnsqueeze),
        Box::new(SqueezeChain),
        Box::new(FlattenChain),
        Box::new(SliceChain),
        Box::new(TransposeIntoGemm),
        Box::new(Idempotent),
        Box::new(ConcatChain),
        Box::new(LogSoftmax),
        Box::new(WhereNot),
        Box::new(GeluErf),
        Box::new(LayerNormPattern),
        Box::new(RmsNormPattern),
        Box::new(RotaryPattern),
        Box::new(AttentionPattern),
        Box::new(SwishPattern),
        Box::new(ConvInputScale),
    ]
}
