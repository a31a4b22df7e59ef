//! `BatchNormalization` after a `Gemm`, or after a 2-D `MatMul` with a constant weight,
//! folds into the weight and bias of one `Gemm`.

use super::batchnorm::{BnParams, bn_params, f32_vec, inference_bn};
use crate::edit::drop_if_unused;
use crate::guard::{constant, dims, is_op, single_use};
use crate::rule::{Patch, Rule, RuleCx};
use whittle_ir::attr::Attribute;
use whittle_ir::{DataType, Graph, Node, NodeId, Tensor};

/// y = BN(Gemm(A, B, C)) → Gemm(A, B', C') with B' scaling output column n by
/// s[n] = γ[n]/sqrt(var[n] + ε) and C' = s·(β_gemm·C − mean) + β; y = BN(MatMul(A, B)) for
/// 2-D A and constant B → Gemm(A, B', C') likewise.
///
/// Guards: BN in inference mode with only its first output used; the product result
/// feeds only the BN; B (and C) are f32 constants read only here; C is absent, [N] or
/// [1, N]; alpha stays as it was (it scales A·B only).
pub struct GemmBatchNorm;

impl Rule for GemmBatchNorm {
    fn name(&self) -> &'static str {
        "gemm-batchnorm"
    }

    fn find(&self, g: &Graph, n: NodeId, _cx: &RuleCx) -> Option<Patch> {
        let (z, y) = inference_bn(g, n)?;
        let (p, _) = g.value(z).producer()?;
        let prod = g.node(p);
        let is_gemm = is_op(prod, "Gemm");
        if !(is_gemm || is_op(prod, "MatMul")) || !single_use(g, z) {
            return None;
        }
        let (a, bv) = (prod.input(0)?, prod.input(1)?);
        let b = constant(g, Some(bv))?;
        if b.dtype() != DataType::Float || b.dims.len() != 2 || g.value(bv).uses().len() != 1 {
            return None;
        }
        if !is_gemm && dims(g, a)?.len() != 2 {
            return None;
        }
        let trans_b = is_gemm && prod.attr("transB").and_then(|x| x.i).unwrap_or(0) != 0;
        let nn = usize::try_from(if trans_b { b.dims[0] } else { b.dims[1] }).ok()?;
        let beta_g = if is_gemm {
            f64::from(prod.attr("beta").and_then(|x| x.f).unwrap_or(1.0))
        } else {
            0.0
        };
        let c: Vec<f64> = match prod.input(2).filter(|_| is_gemm) {
            Some(cv) => {
                let ct = constant(g, Some(cv))?;
                if !(ct.dims == [nn as i64] || ct.dims == [1, nn as i64])
                    || g.value(cv).uses().len() != 1
                {
                    return None;
                }
                f32_vec(g, Some(cv), nn)?
            }
            None => vec![0.0; nn],
        };
        let BnParams { s, mean, beta } = bn_params(g, n, nn)?;
        let bd = b.to_f32_vec().ok()?;
        let cols = b.dims[1] as usize;
        let new_b: Vec<f32> = bd
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let out = if trans_b { i / cols } else { i % cols };
                (f64::from(*x) * s[out]) as f32
            })
            .collect();
        let new_c: Vec<f32> = (0..nn)
            .map(|i| (s[i] * (beta_g * c[i] - mean[i]) + beta[i]) as f32)
            .collect();
        let (b_dims, b_name) = (b.dims.clone(), g.value(bv).name().to_string());
        let old_c = prod.input(2).filter(|_| is_gemm);
        let attrs = if is_gemm {
            prod.attributes.clone()
        } else {
            whittle_ir::Attributes::default()
        };
        let name = prod.name.clone();
        Some(Box::new(move |g: &mut Graph| {
            let nb = g.add_initializer(&b_name, Tensor::from_f32(b_dims, &new_b));
            let nc = g.add_initializer(
                &format!("{b_name}_bias"),
                Tensor::from_f32(vec![nn as i64], &new_c),
            );
            let mut gemm = Node::new("Gemm");
            gemm.name = name;
            gemm.attributes = attrs;
            gemm.set_attr(Attribute::float("beta", 1.0));
            // The BN's output becomes the Gemm's: remove the BN first so it is free.
            g.remove_node(n);
            g.add_node_at(p, gemm, vec![Some(a), Some(nb), Some(nc)], vec![Some(y)])?;
            g.remove_node(p);
            drop_if_unused(g, bv);
            if let Some(c) = old_c {
                drop_if_unused(g, c);
            }
            Ok(())
        }))
    }
}
