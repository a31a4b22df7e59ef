//! Matrix products: Gemm, MatMul (batched, numpy 1-D promotion), MatMulInteger,
//! QLinearMatMul, Einsum.

use super::broadcast::broadcast;
use crate::dtype::DataType;
use crate::infer::ctx::{Ctx, RuleResult};
use crate::infer::fact::Fact;
use crate::types::Dim;
use std::collections::BTreeMap;

/// The rule for `op`, if this family has one.
pub fn rule(op: &str, cx: &mut Ctx) -> Option<RuleResult> {
    Some(match op {
        "Gemm" => gemm(cx),
        "MatMul" => matmul(cx, 0, 1, cx.elem(0)),
        "MatMulInteger" => matmul(cx, 0, 1, Some(DataType::Int32)),
        "QLinearMatMul" => matmul(cx, 0, 3, cx.elem(7)),
        "Einsum" => einsum(cx),
        _ => return None,
    })
}

fn gemm(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let (Some(a), Some(b)) = (cx.dims(0), cx.dims(1)) else {
        return Ok(vec![Fact::tensor(elem, vec![Dim::Unknown; 2])]);
    };
    if a.len() != 2 || b.len() != 2 {
        return Err(format!("operands of rank {} and {}", a.len(), b.len()));
    }
    let m = if cx.int("transA", 0) != 0 {
        &a[1]
    } else {
        &a[0]
    };
    let n = if cx.int("transB", 0) != 0 {
        &b[0]
    } else {
        &b[1]
    };
    Ok(vec![Fact::tensor(elem, vec![m.clone(), n.clone()])])
}

/// The shape of `matmul(A, B)` by numpy rules.
pub fn matmul_dims(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    if a.is_empty() || b.is_empty() {
        return Err("matmul of a scalar".into());
    }
    let a2: Vec<Dim> = if a.len() == 1 {
        vec![Dim::Known(1), a[0].clone()]
    } else {
        a.to_vec()
    };
    let b2: Vec<Dim> = if b.len() == 1 {
        vec![b[0].clone(), Dim::Known(1)]
    } else {
        b.to_vec()
    };
    let (ka, kb) = (&a2[a2.len() - 1], &b2[b2.len() - 2]);
    if let (Dim::Known(x), Dim::Known(y)) = (ka, kb)
        && x != y
    {
        return Err(format!("inner dims {x} and {y} differ"));
    }
    let mut out = broadcast(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    if a.len() > 1 {
        out.push(a2[a2.len() - 2].clone());
    }
    if b.len() > 1 {
        out.push(b2[b2.len() - 1].clone());
    }
    Ok(out)
}

fn matmul(cx: &mut Ctx, a_at: usize, b_at: usize, elem: Option<DataType>) -> RuleResult {
    match (cx.dims(a_at), cx.dims(b_at)) {
        (Some(a), Some(b)) => Ok(vec![Fact::tensor(elem, matmul_dims(a, b)?)]),
        _ => Ok(vec![Fact::of_elem(elem)]),
    }
}

/// An einsum equation split into per-operand subscripts and the output subscripts;
/// `.` stands for the ellipsis.
pub struct Equation {
    pub inputs: Vec<Vec<char>>,
    pub output: Vec<char>,
}

impl Equation {
    /// Parses `ij,jk->ik` (implicit output: the letters used once, sorted).
    pub fn parse(eq: &str) -> Option<Equation> {
        let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
        let eq = eq.replace("...", ".");
        let (lhs, rhs) = match eq.split_once("->") {
            Some((l, r)) => (l.to_string(), Some(r.to_string())),
            None => (eq.clone(), None),
        };
        let inputs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
        if inputs
            .iter()
            .flatten()
            .any(|c| !(c.is_ascii_alphabetic() || *c == '.'))
        {
            return None;
        }
        let output = match rhs {
            Some(r) => r.chars().collect(),
            None => {
                let mut count: BTreeMap<char, usize> = BTreeMap::new();
                for c in inputs.iter().flatten().filter(|c| **c != '.') {
                    *count.entry(*c).or_default() += 1;
                }
                let ell = inputs.iter().flatten().any(|c| *c == '.');
                let mut out: Vec<char> = if ell { vec!['.'] } else { Vec::new() };
                out.extend(count.into_iter().filter(|(_, n)| *n == 1).map(|(c, _)| c));
                out
            }
        };
        Some(Equation { inputs, output })
    }

    /// Sizes of every letter, and the broadcast ellipsis dims, from operand shapes.
    pub fn sizes(&self, shapes: &[&[Dim]]) -> Result<(BTreeMap<char, Dim>, Vec<Dim>), String> {
        let mut sizes: BTreeMap<char, Dim> = BTreeMap::new();
        let mut ell: Vec<Dim> = Vec::new();
        for (subs, dims) in self.inputs.iter().zip(shapes) {
            let letters = subs.iter().filter(|c| **c != '.').count();
            if dims.len() < letters || (!subs.contains(&'.') && dims.len() != letters) {
                return Err(format!(
                    "operand rank {} does not match '{}'",
                    dims.len(),
                    subs.iter().collect::<String>()
                ));
            }
            let n_ell = dims.len() - letters;
            let mut k = 0;
            for c in subs {
                if *c == '.' {
                    ell = broadcast(&ell, &dims[k..k + n_ell])?;
                    k += n_ell;
                    continue;
                }
                let d = &dims[k];
                k += 1;
                let e = sizes.entry(*c).or_insert(Dim::Unknown);
                *e = match (&*e, d) {
                    (Dim::Known(x), Dim::Known(y)) if x != y && *x != 1 && *y != 1 => {
                        return Err(format!("letter '{c}' is both {x} and {y}"));
                    }
                    (Dim::Known(1), y) => y.clone(),
                    (Dim::Known(_), _) => e.clone(),
                    (_, Dim::Known(_)) => d.clone(),
                    (Dim::Unknown, _) => d.clone(),
                    _ => e.clone(),
                };
            }
        }
        Ok((sizes, ell))
    }
}

fn einsum(cx: &mut Ctx) -> RuleResult {
    let elem = cx.elem(0);
    let Some(eq) = Equation::parse(&cx.string("equation", "")) else {
        return Err("cannot parse the einsum equation".into());
    };
    let shapes: Option<Vec<&[Dim]>> = (0..cx.n_inputs()).map(|i| cx.dims(i)).collect();
    let Some(shapes) = shapes else {
        return Ok(vec![Fact::of_elem(elem)]);
    };
    if shapes.len() != eq.inputs.len() {
        return Err("operand count does not match the equation".into());
    }
    let (sizes, ell) = eq.sizes(&shapes)?;
    let mut out = Vec::new();
    for c in &eq.output {
        if *c == '.' {
            out.extend(ell.iter().cloned());
        } else {
            out.push(sizes.get(c).cloned().unwrap_or(Dim::Unknown));
        }
    }
    Ok(vec![Fact::tensor(elem, out)])
}
