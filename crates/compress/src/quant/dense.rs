//! The dense layers the integer quantizers rewrite: `MatMul(x, W)` and `Gemm(x, W[, c])`
//! with alpha = beta = 1 and transA = 0, W a constant 2-D f32 weight, x known f32.

use whittle_ir::infer::Inference;
use whittle_ir::{DataType, Graph, NodeId, ValueId};
use whittle_passes::guard::is_op;

/// What a dense layer reads and writes.
pub(super) struct Dense {
    pub(super) x: ValueId,
    pub(super) w: ValueId,
    /// The weight is stored [N, K] (Gemm transB = 1).
    pub(super) transposed: bool,
    /// Gemm's C.
    pub(super) addend: Option<ValueId>,
    pub(super) y: ValueId,
}

/// Node `n` as a dense layer, if it is one (the weight's other guards are the caller's).
pub(super) fn dense(g: &Graph, n: NodeId, facts: Option<&Inference>) -> Option<Dense> {
    let node = g.node(n);
    let int = |name: &str| node.attr(name).and_then(|a| a.i).unwrap_or(0);
    let float = |name: &str| node.attr(name).and_then(|a| a.f).unwrap_or(1.0);
    let (transposed, addend) = if is_op(node, "MatMul") {
        (false, None)
    } else if is_op(node, "Gemm") && int("transA") == 0 && float("alpha") == 1.0 {
        let c = node.input(2);
        if c.is_some() && float("beta") != 1.0 {
            return None;
        }
        (int("transB") == 1, c)
    } else {
        return None;
    };
    let (x, w, y) = (node.input(0)?, node.input(1)?, node.output(0)?);
    if g.value(w).initializer()?.dims.len() != 2 {
        return None;
    }
    let fact = facts?.fact(x)?;
    if fact.elem != Some(DataType::Float) {
        return None;
    }
    Some(Dense {
        x,
        w,
        transposed,
        addend,
        y,
    })
}

/// The weight of `d` as a row-major [K, N] matrix (transposed back when stored [N, K]),
/// with K and N; None when it is not a readable float tensor.
pub(super) fn kn_values(g: &Graph, d: &Dense) -> Option<(Vec<f32>, usize, usize)> {
    let w = g.value(d.w).initializer()?;
    let values = w.to_f32_vec().ok()?;
    let (rows, cols) = (*w.dims.first()? as usize, *w.dims.get(1)? as usize);
    Some(if d.transposed {
        (transpose(&values, rows, cols), cols, rows)
    } else {
        (values, rows, cols)
    })
}

/// K, the input width of dense layer `d`, from its weight's dims (no data read).
pub(super) fn k_of(g: &Graph, d: &Dense) -> Option<usize> {
    let w = g.value(d.w).initializer()?;
    let k = if d.transposed {
        w.dims.get(1)
    } else {
        w.dims.first()
    };
    k.map(|k| *k as usize)
}

/// The [rows, cols] row-major matrix `v` transposed.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}
