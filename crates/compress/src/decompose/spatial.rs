//! `--decompose spatial`: a kh×kw Conv (group 1) becomes a kh×1 Conv into r channels
//! followed by a 1×kw Conv (Jaderberg et al.'s scheme 2).
//!
//! W[o, c, i, j] is read as the matrix M[(c, i), (o, j)] (Cin·kh × Cout·kw) and factored,
//! M ≈ Σ_r a_r·b_rᵀ: V[r, c, i, 0] = a_r[(c, i)], H[o, r, 0, j] = b_r[(o, j)]. The
//! vertical conv takes the strides, dilations and pads of the height axis, the
//! horizontal one those of the width axis (auto_pad acts per axis, so it is copied to
//! both). Exact at r = min(Cin·kh, Cout·kw). Always the plain weight SVD: the rows of M
//! mix channels and taps, and no data weighting is applied.

use super::conv::f32_tensor;
use super::layer::{ConvShape, Layer};
use super::{Kind, Prepared};
use nalgebra::DMatrix;
use whittle_ir::{Attribute, Graph, IrError, Node};

/// Factors the conv weight `w` (row-major [Cout, Cin, kh, kw]).
pub fn prepare(c: &ConvShape, w: &[f32]) -> Prepared {
    let [kh, kw] = c.kernel;
    let a = DMatrix::from_fn(c.cin * kh, c.cout * kw, |row, col| {
        let (ch, i, o, j) = (row / kh, row % kh, col / kw, col % kw);
        f64::from(w[((o * c.cin + ch) * kh + i) * kw + j])
    });
    let mut p = Prepared::new(Kind::Spatial);
    p.push(&a, None, None);
    p
}

/// Rewrites the layer into the vertical and horizontal convs at rank `r`.
pub fn emit(
    g: &mut Graph,
    l: &Layer,
    c: &ConvShape,
    p: &Prepared,
    r: usize,
) -> Result<(), IrError> {
    let Some((b, r)) = p.single(r) else {
        return Ok(());
    };
    let [kh, kw] = c.kernel;
    let mut v = vec![0f32; r * c.cin * kh];
    for k in 0..r {
        for row in 0..c.cin * kh {
            v[k * c.cin * kh + row] = b.left[(row, k)] as f32;
        }
    }
    let mut h = vec![0f32; c.cout * r * kw];
    for o in 0..c.cout {
        for k in 0..r {
            for j in 0..kw {
                h[(o * r + k) * kw + j] = b.right[(k, o * kw + j)] as f32;
            }
        }
    }
    let node = g.node(l.node).clone();
    let base = super::base_name(g, l.node);
    let vv = g.add_initializer(
        &format!("{base}_vertical_w"),
        f32_tensor(vec![r as i64, c.cin as i64, kh as i64, 1], &v),
    );
    let hv = g.add_initializer(
        &format!("{base}_horizontal_w"),
        f32_tensor(vec![c.cout as i64, r as i64, 1, kw as i64], &h),
    );
    let z = g.fresh_value(&format!("{base}_vertical"));
    let mut vert = Node::new("Conv").with_name(format!("{base}_vertical"));
    let ints = |name: &str, default: i64, n: usize| {
        node.attr(name)
            .map(|a| a.ints.to_vec())
            .filter(|v| v.len() == n)
            .unwrap_or_else(|| vec![default; n])
    };
    let (strides, dilations, pads) = (
        ints("strides", 1, 2),
        ints("dilations", 1, 2),
        ints("pads", 0, 4),
    );
    if let Some(a) = node.attr("auto_pad") {
        vert = vert.with_attr(a.clone());
    }
    vert = vert
        .with_attr(Attribute::ints("kernel_shape", vec![kh as i64, 1]))
        .with_attr(Attribute::ints("strides", vec![strides[0], 1]))
        .with_attr(Attribute::ints("dilations", vec![dilations[0], 1]));
    if node.attr("pads").is_some() {
        vert = vert.with_attr(Attribute::ints("pads", vec![pads[0], 0, pads[2], 0]));
    }
    g.add_node_at(l.node, vert, vec![node.input(0), Some(vv)], vec![Some(z)])?;
    let horiz = g.node_mut(l.node);
    horiz.set_attr(Attribute::ints("kernel_shape", vec![1, kw as i64]));
    horiz.set_attr(Attribute::ints("strides", vec![1, strides[1]]));
    horiz.set_attr(Attribute::ints("dilations", vec![1, dilations[1]]));
    if horiz.attr("pads").is_some() {
        horiz.set_attr(Attribute::ints("pads", vec![0, pads[1], 0, pads[3]]));
    }
    g.set_input(l.node, 0, Some(z));
    g.set_input(l.node, 1, Some(hv));
    g.remove_initializer(l.w);
    Ok(())
}

/// The rank-r weight the rewrite computes, in the original layout (tests, error figures).
pub fn reconstruct(c: &ConvShape, p: &Prepared, r: usize) -> Vec<f32> {
    let [kh, kw] = c.kernel;
    p.scatter(r, c.cout * c.cin * kh * kw, |_, row, col| {
        let (ch, i, o, j) = (row / kh, row % kh, col / kw, col % kw);
        ((o * c.cin + ch) * kh + i) * kw + j
    })
}
