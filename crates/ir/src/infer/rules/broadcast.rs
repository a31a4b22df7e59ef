//! Multidirectional (numpy) broadcasting of dims.

use crate::types::Dim;

/// The broadcast of two shapes: aligned from the right; a 1 stretches to the other size.
/// Two known sizes that differ and are not 1 are a contradiction.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    let n = a.len().max(b.len());
    let one = Dim::Known(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let x = if i + a.len() >= n {
            &a[i + a.len() - n]
        } else {
            &one
        };
        let y = if i + b.len() >= n {
            &b[i + b.len() - n]
        } else {
            &one
        };
        out.push(
            pair(x, y).ok_or_else(|| format!("cannot broadcast {} with {}", show(a), show(b)))?,
        );
    }
    Ok(out)
}

fn pair(x: &Dim, y: &Dim) -> Option<Dim> {
    use Dim::*;
    Some(match (x, y) {
        (Known(1), d) | (d, Known(1)) => d.clone(),
        (Known(p), Known(q)) if p != q => return None,
        (Known(p), _) | (_, Known(p)) => Known(*p),
        (Param(p), Param(q)) if p == q => x.clone(),
        _ => Unknown,
    })
}

fn show(d: &[Dim]) -> String {
    let s: Vec<String> = d.iter().map(ToString::to_string).collect();
    format!("[{}]", s.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Dim::*;

    #[test]
    fn numpy_rules() {
        let a = [Param("b".into()), Known(1), Known(4)];
        let b = [Known(3), Known(1)];
        assert_eq!(
            broadcast(&a, &b).unwrap(),
            vec![Param("b".into()), Known(3), Known(4)]
        );
        assert!(broadcast(&[Known(2)], &[Known(3)]).is_err());
        assert_eq!(
            broadcast(&[Param("x".into())], &[Param("y".into())]).unwrap(),
            vec![Unknown]
        );
    }
}
