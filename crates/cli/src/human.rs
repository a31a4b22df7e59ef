//! Numbers for people: `4.09G`, `97.5 MB`, and cost formulas with scaled coefficients.

use whittle_ir::infer::Poly;

/// A count with an SI suffix and three significant digits: `25.6M`, `4.09G`, `512`.
pub fn count(n: f64) -> String {
    let a = n.abs();
    let (v, s) = match a {
        _ if a >= 1e12 => (n / 1e12, "T"),
        _ if a >= 1e9 => (n / 1e9, "G"),
        _ if a >= 1e6 => (n / 1e6, "M"),
        _ if a >= 1e3 => (n / 1e3, "k"),
        _ => return format!("{n}"),
    };
    format!("{}{s}", sig3(v))
}

/// Bytes in decimal units: `97.5 MB`.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    match n {
        _ if f >= 1e9 => format!("{} GB", sig3(f / 1e9)),
        _ if f >= 1e6 => format!("{} MB", sig3(f / 1e6)),
        _ if f >= 1e3 => format!("{} kB", sig3(f / 1e3)),
        _ => format!("{n} B"),
    }
}

fn sig3(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A cost polynomial with scaled coefficients: `4.09G`, `1.2M*batch*seq+340k*batch`.
pub fn poly(p: &Poly) -> String {
    if let Some(c) = p.as_const() {
        return count(c as f64);
    }
    let mut out = String::new();
    for (i, (syms, c)) in p.terms().into_iter().enumerate() {
        if c < 0 {
            out.push('-');
        } else if i > 0 {
            out.push('+');
        }
        let mag = c.unsigned_abs();
        if syms.is_empty() {
            out.push_str(&count(mag as f64));
        } else {
            if mag != 1 {
                out.push_str(&count(mag as f64));
                out.push('*');
            }
            out.push_str(&syms.join("*"));
        }
    }
    out
}

/// `poly` or `?` when unknown.
pub fn opt_poly(p: Option<&Poly>) -> String {
    p.map_or_else(|| "?".into(), poly)
}
