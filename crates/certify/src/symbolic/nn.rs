//! The checker's own dims of the compute ops (MatMul, Gemm, Conv and pools, reductions,
//! Split): only what their definitions give for every input; the rest unknown.

use super::poly::Poly;
use super::terms::Sym;
use super::{Out, attr_i, attr_ints, axis, int_input};
use whittle_ir::Node;

type Shape = Vec<Option<Poly>>;

/// `MatMul(a, b)`: numpy matmul dims (batch dims broadcast).
pub fn matmul(a: &Sym, b: &Sym) -> Out {
    let shape = (|| {
        let (mut x, mut y) = (a.shape.clone()?, b.shape.clone()?);
        let (vx, vy) = (x.len() == 1, y.len() == 1);
        if vx {
            x.insert(0, Some(Poly::constant(1)));
        }
        if vy {
            y.push(Some(Poly::constant(1)));
        }
        if x.len() < 2 || y.len() < 2 {
            return None;
        }
        let (m, n) = (x[x.len() - 2].clone(), y[y.len() - 1].clone());
        let bx = x[..x.len() - 2].to_vec();
        let by = y[..y.len() - 2].to_vec();
        let mut out = super::arith::broadcast(&[&bx, &by])?;
        if !vx {
            out.push(m);
        }
        if !vy {
            out.push(n);
        }
        Some(out)
    })();
    Out::float(a.dtype, shape)
}

/// `Gemm(a, b, c)`: `[M, N]` with the transposes.
pub fn gemm(node: &Node, a: &Sym, b: &Sym) -> Out {
    let shape = (|| {
        let (x, y) = (a.shape.as_ref()?, b.shape.as_ref()?);
        if x.len() != 2 || y.len() != 2 {
            return None;
        }
        let ta = attr_i(node, "transA").unwrap_or(0) != 0;
        let tb = attr_i(node, "transB").unwrap_or(0) != 0;
        Some(vec![
            x[usize::from(ta)].clone(),
            y[usize::from(!tb)].clone(),
        ])
    })();
    Out::float(a.dtype, shape)
}

/// One spatial output dim: `floor((n + pads - ((k - 1)·d + 1)) / s) + 1`; symbolic only
/// when the stride is 1 (then no floor is needed).
fn window_dim(n: &Poly, k: i64, s: i64, d: i64, pads: i64) -> Option<Poly> {
    let span = (k - 1).checked_mul(d)?.checked_add(1)?;
    let reach = n.add(&Poly::constant(pads - span))?;
    match (s, reach.as_const()) {
        (1, _) => reach.add(&Poly::constant(1)),
        (s, Some(r)) if s > 0 && r >= 0 => Some(Poly::constant(r / s + 1)),
        _ => None,
    }
}

/// `Conv`, `MaxPool`, `AveragePool`, `LpPool` (no `ceil_mode`): `[N, C_out,
/// spatial…]`.
pub fn window(node: &Node, x: &Sym, w: Option<&Sym>) -> Out {
    let shape = (|| {
        let d = x.shape.as_ref()?;
        let auto = node
            .attr("auto_pad")
            .and_then(|a| a.s.as_ref())
            .map(|s| s.to_vec());
        let auto = auto.filter(|s| s.as_slice() != b"NOTSET");
        if attr_i(node, "ceil_mode").unwrap_or(0) != 0 {
            return None;
        }
        let sp = d.len().checked_sub(2)?;
        let kernel = match w {
            Some(w) => w.const_dims()?.get(2..)?.to_vec(),
            None => attr_ints(node, "kernel_shape")?,
        };
        let strides = attr_ints(node, "strides").unwrap_or_else(|| vec![1; sp]);
        let dil = attr_ints(node, "dilations").unwrap_or_else(|| vec![1; sp]);
        let pads = match auto.as_deref() {
            None | Some(b"VALID") => attr_ints(node, "pads").unwrap_or_else(|| vec![0; 2 * sp]),
            // SAME_UPPER and SAME_LOWER: ceil(n / s), whatever the kernel.
            Some(_) => return same_padded(d, &strides, w),
        };
        if kernel.len() != sp || strides.len() != sp || dil.len() != sp || pads.len() != 2 * sp {
            return None;
        }
        let channels = match w {
            Some(w) => w.shape.as_ref()?.first()?.clone(),
            None => d[1].clone(),
        };
        let mut out = vec![d[0].clone(), channels];
        for i in 0..sp {
            let n = d[2 + i].as_ref();
            out.push(n.and_then(|n| {
                window_dim(n, kernel[i], strides[i], dil[i], pads[i] + pads[i + sp])
            }));
        }
        Some(out)
    })();
    Out::float(x.dtype, shape)
}

/// The dims of a window op padded `SAME_*`: each spatial dim ceil(n / s) (n itself at
/// stride 1).
fn same_padded(d: &[Option<Poly>], strides: &[i64], w: Option<&Sym>) -> Option<Vec<Option<Poly>>> {
    let sp = d.len().checked_sub(2)?;
    if strides.len() != sp {
        return None;
    }
    let channels = match w {
        Some(w) => w.shape.as_ref()?.first()?.clone(),
        None => d[1].clone(),
    };
    let mut out = vec![d[0].clone(), channels];
    for (i, s) in strides.iter().enumerate() {
        out.push(match (s, d[2 + i].as_ref()) {
            (1, n) => n.cloned(),
            (s, Some(n)) if *s > 0 => n.as_const().map(|n| Poly::constant((n + s - 1) / s)),
            _ => None,
        });
    }
    Some(out)
}

/// `GlobalAveragePool` and `GlobalMaxPool`: the spatial dims become 1.
pub fn global_pool(x: &Sym) -> Out {
    let shape = x.shape.as_ref().filter(|d| d.len() >= 2).map(|d| {
        let mut out: Shape = d[..2].to_vec();
        out.extend((2..d.len()).map(|_| Some(Poly::constant(1))));
        out
    });
    Out::float(x.dtype, shape)
}

/// Reductions (`ReduceMean`, …, `ArgMax`): the reduced axes dropped or kept as 1.
pub fn reduce(op: &str, node: &Node, x: &Sym, axes_in: Option<&Sym>) -> Out {
    let arg = matches!(op, "ArgMax" | "ArgMin");
    let shape = (|| {
        let d = x.shape.as_ref()?;
        let keep = attr_i(node, "keepdims").unwrap_or(1) != 0;
        let axes: Vec<i64> = if arg {
            vec![attr_i(node, "axis").unwrap_or(0)]
        } else {
            match attr_ints(node, "axes").or_else(|| int_input(axes_in)) {
                Some(a) if !a.is_empty() => a,
                _ if axes_in.is_some() => return None,
                _ if attr_i(node, "noop_with_empty_axes").unwrap_or(0) != 0 => return None,
                _ => (0..d.len() as i64).collect(),
            }
        };
        let at: Vec<usize> = axes
            .iter()
            .map(|a| axis(*a, d.len()))
            .collect::<Option<_>>()?;
        Some(
            (0..d.len())
                .filter_map(|i| match (at.contains(&i), keep) {
                    (true, true) => Some(Some(Poly::constant(1))),
                    (true, false) => None,
                    (false, _) => Some(d[i].clone()),
                })
                .collect(),
        )
    })();
    Out::float(if arg { 7 } else { x.dtype }, shape)
}

/// `Split(x, split)`: each output's dims (sizes from the input or attribute, or equal
/// parts of a constant dim).
pub fn split(node: &Node, x: &Sym, sizes: Option<&Sym>, outputs: usize) -> Vec<Out> {
    let shapes = (|| {
        let d = x.shape.as_ref()?;
        let a = axis(attr_i(node, "axis").unwrap_or(0), d.len())?;
        let sizes: Vec<i64> = match attr_ints(node, "split").or_else(|| int_input(sizes)) {
            Some(s) => s,
            None if sizes.is_some() => return None,
            None => {
                let n = d[a].as_ref()?.as_const()?;
                let k = outputs as i64;
                let part = (n + k - 1) / k.max(1);
                (0..k).map(|i| part.min(n - i * part).max(0)).collect()
            }
        };
        (sizes.len() == outputs).then(|| {
            sizes
                .iter()
                .map(|s| {
                    let mut o = d.clone();
                    o[a] = Some(Poly::constant(*s));
                    o
                })
                .collect::<Vec<Shape>>()
        })
    })();
    (0..outputs)
        .map(|i| Out::float(x.dtype, shapes.as_ref().map(|s| s[i].clone())))
        .collect()
}

/// `Pad(x, pads)` (input, or attribute before opset 11): each dim grows by its pads.
pub fn pad(node: &Node, x: &Sym, pads: Option<&Sym>, axes: Option<&Sym>) -> Out {
    let shape = (|| {
        let d = x.shape.as_ref()?;
        let pads = attr_ints(node, "pads").or_else(|| int_input(pads))?;
        let axes: Vec<usize> = match axes {
            Some(a) => a
                .const_ints()?
                .iter()
                .map(|a| axis(*a, d.len()))
                .collect::<Option<_>>()?,
            None => (0..d.len()).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return None;
        }
        let mut out = d.clone();
        for (k, a) in axes.iter().enumerate() {
            let grow = Poly::constant(pads[k] + pads[k + axes.len()]);
            out[*a] = out[*a].as_ref().and_then(|v| v.add(&grow));
        }
        Some((out, pads.iter().all(|p| *p == 0)))
    })();
    // No padding at all (any mode): x itself.
    let none = shape.as_ref().is_some_and(|(_, zero)| *zero);
    Out {
        term: none.then_some(x.term),
        ..Out::float(x.dtype, shape.map(|(s, _)| s))
    }
}

/// `TopK(x, k)`: the axis becomes k (values, and int64 indices).
pub fn top_k(node: &Node, x: &Sym, k: Option<&Sym>) -> Vec<Out> {
    let shape = (|| {
        let mut d = x.shape.clone()?;
        let a = axis(attr_i(node, "axis").unwrap_or(-1), d.len())?;
        let k = k?.ints.as_ref().filter(|v| v.len() == 1)?[0].clone();
        d[a] = Some(k);
        Some(d)
    })();
    vec![Out::float(x.dtype, shape.clone()), Out::float(7, shape)]
}

/// `Resize(x, roi, scales, sizes)`: the sizes when given; with scales, floor(dim ·
/// scale) for constant dims.
pub fn resize(x: &Sym, scales: Option<&Sym>, sizes: Option<&Sym>) -> Out {
    let shape = (|| {
        let d = x.shape.as_ref()?;
        if let Some(s) = sizes.and_then(|s| s.ints.clone()) {
            return (s.len() == d.len()).then(|| s.into_iter().map(Some).collect());
        }
        let scales = scales?.const_dims().filter(|v| v.len() == 1)?;
        let n = usize::try_from(scales[0]).ok()?;
        (n == d.len()).then(|| vec![None; n])
    })();
    Out::float(x.dtype, shape)
}

/// `LSTM`, `GRU`, `RNN` (layout 0): Y `[seq, dirs, batch, hidden]`, the states `[dirs,
/// batch, hidden]`.
pub fn recurrent(node: &Node, x: &Sym, outputs: usize) -> Vec<Out> {
    let parts = (|| {
        let d = x.shape.as_ref().filter(|d| d.len() == 3)?;
        if attr_i(node, "layout").unwrap_or(0) != 0 {
            return None;
        }
        let hidden = Some(Poly::constant(attr_i(node, "hidden_size")?));
        let dirs = match node.attr("direction").and_then(|a| a.s.as_ref()) {
            Some(s) if s.as_ref() == b"bidirectional" => 2,
            _ => 1,
        };
        let dirs = Some(Poly::constant(dirs));
        let y = vec![d[0].clone(), dirs.clone(), d[1].clone(), hidden.clone()];
        Some((y, vec![dirs, d[1].clone(), hidden]))
    })();
    (0..outputs)
        .map(|i| {
            let shape = parts
                .as_ref()
                .map(|(y, h)| if i == 0 { y.clone() } else { h.clone() });
            Out::float(x.dtype, shape)
        })
        .collect()
}

/// `ConvTranspose` with explicit pads and no `output_shape`: `s·(n − 1) + out_pad +
/// (k − 1)·d + 1 − pads` per spatial dim, `[N, C_out·group, …]`.
pub fn conv_transpose(node: &Node, x: &Sym, w: Option<&Sym>) -> Out {
    let shape = (|| {
        let d = x.shape.as_ref()?;
        let auto = node.attr("auto_pad").and_then(|a| a.s.as_ref());
        if auto.is_some_and(|s| s.as_ref() != b"NOTSET") || node.attr("output_shape").is_some() {
            return None;
        }
        let wd = w?.const_dims()?;
        let sp = d.len().checked_sub(2)?;
        let group = attr_i(node, "group").unwrap_or(1);
        let strides = attr_ints(node, "strides").unwrap_or_else(|| vec![1; sp]);
        let dil = attr_ints(node, "dilations").unwrap_or_else(|| vec![1; sp]);
        let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 2 * sp]);
        let opad = attr_ints(node, "output_padding").unwrap_or_else(|| vec![0; sp]);
        if wd.len() != sp + 2
            || [strides.len(), dil.len(), opad.len()]
                .iter()
                .any(|l| *l != sp)
        {
            return None;
        }
        let mut out = vec![
            d[0].clone(),
            Some(Poly::constant(wd[1].checked_mul(group)?)),
        ];
        for i in 0..sp {
            let extra = opad[i] + (wd[2 + i] - 1) * dil[i] + 1 - pads.get(i)? - pads.get(i + sp)?;
            let grown = d[2 + i].as_ref().and_then(|n| {
                n.sub(&Poly::constant(1))?
                    .mul(&Poly::constant(strides[i]))?
                    .add(&Poly::constant(extra))
            });
            out.push(grown);
        }
        Some(out)
    })();
    Out::float(x.dtype, shape)
}
