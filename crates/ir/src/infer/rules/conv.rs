//! Sliding-window ops: Conv (also ConvInteger, QLinearConv), ConvTranspose and pools,
//! with auto_pad, strides, dilations, groups and ceil_mode.

use crate::dtype::DataType;
use crate::infer::ctx::{Ctx, RuleResult};
use crate::infer::fact::{Fact, known};
use crate::infer::poly::Poly;
use crate::types::Dim;

/// The rule for `op`, if this family has one.
pub fn rule(op: &str, cx: &mut Ctx) -> Option<RuleResult> {
    Some(match op {
        "Conv" => conv(cx, 1, cx.elem(0)),
        "ConvInteger" => conv(cx, 1, Some(DataType::Int32)),
        "QLinearConv" => conv(cx, 3, cx.elem(7)),
        "ConvTranspose" => conv_transpose(cx),
        "MaxPool" | "AveragePool" | "LpPool" => pool(op, cx),
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => Ok(vec![match cx.dims(0) {
            Some(d) if d.len() >= 2 => {
                let mut out = d[..2].to_vec();
                out.resize(d.len(), Dim::Known(1));
                Fact::tensor(cx.elem(0), out)
            }
            _ => Fact::of_elem(cx.elem(0)),
        }]),
        _ => return None,
    })
}

/// Window geometry shared by convs and pools.
struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    pads: Vec<i64>,
    auto_pad: String,
}

impl Window {
    fn read(cx: &Ctx, kernel: Vec<i64>) -> Result<Window, String> {
        let n = kernel.len();
        let or_ones = |name: &str| {
            cx.ints_attr(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec![1; n])
        };
        let w = Window {
            strides: or_ones("strides"),
            dilations: or_ones("dilations"),
            pads: cx
                .ints_attr("pads")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec![0; 2 * n]),
            auto_pad: cx.string("auto_pad", "NOTSET"),
            kernel,
        };
        if w.strides.len() != n || w.dilations.len() != n || w.pads.len() != 2 * n {
            return Err("strides, dilations or pads do not match the kernel rank".into());
        }
        if w.strides
            .iter()
            .chain(&w.dilations)
            .chain(&w.kernel)
            .any(|x| *x <= 0)
        {
            return Err("non-positive kernel, stride or dilation".into());
        }
        Ok(w)
    }

    /// Output size along spatial axis `i` for input size `d`.
    fn out(&self, i: usize, d: &Dim, ceil: bool) -> Dim {
        let (k, s, dl) = (self.kernel[i], self.strides[i], self.dilations[i]);
        // Absurd attributes overflow: the size is then unknown, never wrong.
        let Some(ext) = (k - 1).checked_mul(dl).and_then(|e| e.checked_add(1)) else {
            return Dim::Unknown;
        };
        let Some(pads) = self.pads[i]
            .checked_add(self.pads[i + self.kernel.len()])
            .and_then(|p| p.checked_sub(ext))
        else {
            return Dim::Unknown;
        };
        let Some(p) = Poly::of_dim(d) else {
            return Dim::Unknown;
        };
        let r = match self.auto_pad.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => p.ceil_div(s),
            "VALID" => p.sub(&Poly::constant(ext - 1)).and_then(|q| q.ceil_div(s)),
            _ => {
                let span = p.add(&Poly::constant(pads));
                let q = span.and_then(|x| if ceil { x.ceil_div(s) } else { x.floor_div(s) });
                let q = q.and_then(|q| q.add(&Poly::constant(1)));
                match (ceil, q.as_ref().and_then(Poly::as_const), known(d)) {
                    // A last window starting inside the end padding is dropped.
                    (true, Some(o), Some(n))
                        if (o as i128 - 1) * s as i128 >= n as i128 + self.pads[i] as i128 =>
                    {
                        Some(Poly::constant(o - 1))
                    }
                    _ => q,
                }
            }
        };
        r.map_or(Dim::Unknown, |p| p.to_dim())
    }
}

fn spatial(cx: &Ctx, x: &[Dim], w: &Window, ceil: bool) -> Vec<Dim> {
    let _ = cx;
    x[2..]
        .iter()
        .enumerate()
        .map(|(i, d)| w.out(i, d, ceil))
        .collect()
}

fn conv(cx: &mut Ctx, w_at: usize, elem: Option<DataType>) -> RuleResult {
    let x_at = 0;
    let (Some(x), Some(wd)) = (
        cx.dims(x_at).map(<[Dim]>::to_vec),
        cx.dims(w_at).map(<[Dim]>::to_vec),
    ) else {
        return Ok(vec![match cx.dims(x_at) {
            Some(x) => Fact::tensor(elem, vec![Dim::Unknown; x.len()]),
            None => Fact::of_elem(elem),
        }]);
    };
    if x.len() < 3 || wd.len() != x.len() {
        return Err(format!(
            "input rank {} and weight rank {}",
            x.len(),
            wd.len()
        ));
    }
    let kernel = match cx.ints_attr("kernel_shape").filter(|k| !k.is_empty()) {
        Some(k) => k,
        None => match wd[2..].iter().map(known).collect::<Option<Vec<i64>>>() {
            Some(k) => k,
            None => {
                return Ok(vec![Fact::tensor(
                    elem,
                    vec![x[0].clone(), wd[0].clone()]
                        .into_iter()
                        .chain(vec![Dim::Unknown; x.len() - 2])
                        .collect(),
                )]);
            }
        },
    };
    let g = cx.int("group", 1);
    if let (Some(c), Some(cw)) = (known(&x[1]), known(&wd[1]))
        && c != cw * g
    {
        return Err(format!(
            "input has {c} channels but weight expects {cw}×{g} groups"
        ));
    }
    let w = Window::read(cx, kernel)?;
    let mut out = vec![x[0].clone(), wd[0].clone()];
    out.extend(spatial(cx, &x, &w, false));
    Ok(vec![Fact::tensor(elem, out)])
}

fn conv_transpose(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(x), Some(wd)) = (
        cx.dims(0).map(<[Dim]>::to_vec),
        cx.dims(1).map(<[Dim]>::to_vec),
    ) else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    if x.len() < 3 || wd.len() != x.len() {
        return Err(format!(
            "input rank {} and weight rank {}",
            x.len(),
            wd.len()
        ));
    }
    let n = x.len() - 2;
    let g = cx.int("group", 1);
    let cout = match known(&wd[1]) {
        Some(c) => Dim::Known(c * g),
        None => Dim::Unknown,
    };
    let mut out = vec![x[0].clone(), cout];
    if let Some(shape) = cx.ints_attr("output_shape").filter(|s| !s.is_empty()) {
        let tail = &shape[shape.len().saturating_sub(n)..];
        out.extend(tail.iter().map(|d| Dim::Known(*d)));
        return Ok(vec![Fact::tensor(elem, out)]);
    }
    let kernel = cx
        .ints_attr("kernel_shape")
        .filter(|k| !k.is_empty())
        .or_else(|| wd[2..].iter().map(known).collect());
    let Some(kernel) = kernel else {
        out.extend(vec![Dim::Unknown; n]);
        return Ok(vec![Fact::tensor(elem, out)]);
    };
    let w = Window::read(cx, kernel)?;
    let opad = cx
        .ints_attr("output_padding")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![0; n]);
    for i in 0..n {
        let Some(p) = Poly::of_dim(&x[i + 2]) else {
            out.push(Dim::Unknown);
            continue;
        };
        let s = w.strides[i];
        let r = if w.auto_pad.starts_with("SAME") {
            p.scale(s)
        } else {
            let ext = w.dilations[i] * (w.kernel[i] - 1) + 1;
            let extra = opad.get(i).copied().unwrap_or(0) + ext - w.pads[i] - w.pads[i + n];
            p.sub(&Poly::constant(1))
                .and_then(|q| q.scale(s))
                .and_then(|q| q.add(&Poly::constant(extra)))
        };
        out.push(r.map_or(Dim::Unknown, |p| p.to_dim()));
    }
    Ok(vec![Fact::tensor(elem, out)])
}

fn pool(op: &str, cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let Some(x) = cx.dims(0).map(<[Dim]>::to_vec) else {
        return Ok(vec![
            Fact::of_elem(elem),
            Fact::of_elem(Some(DataType::Int64)),
        ]);
    };
    let Some(kernel) = cx.ints_attr("kernel_shape") else {
        return Err(format!("{op} without kernel_shape"));
    };
    if x.len() != kernel.len() + 2 {
        return Err(format!(
            "kernel rank {} for input rank {}",
            kernel.len(),
            x.len()
        ));
    }
    let w = Window::read(cx, kernel)?;
    let ceil = cx.int("ceil_mode", 0) != 0;
    let mut out = x[..2].to_vec();
    out.extend(spatial(cx, &x, &w, ceil));
    Ok(vec![
        Fact::tensor(elem, out.clone()),
        Fact::tensor(Some(DataType::Int64), out),
    ])
}
