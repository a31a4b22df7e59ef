//! Symbolic dimensions as integer polynomials over named symbols.
//!
//! Shape inference needs a little algebra on dims: `Flatten` of `[batch, seq, 768]` gives
//! `batch*seq`, a `Reshape` back with `-1` divides that product again, a `Slice` from 1 gives
//! `seq-1`. A [`Poly`] is a sum of monomials with integer coefficients, which covers these
//! exactly; whatever it cannot express (non-exact division) becomes an unknown dim. A
//! polynomial that is not a lone symbol is written into the file as a `dim_param` like
//! `batch*seq` and parsed back from one.

use crate::types::Dim;
use std::collections::BTreeMap;
use std::fmt;

/// A sum of `coefficient × product of symbols` terms. Zero coefficients are never stored;
/// the empty monomial is the constant term.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Poly(BTreeMap<Vec<String>, i64>);

impl Poly {
    /// The constant `c`.
    pub fn constant(c: i64) -> Poly {
        let mut m = BTreeMap::new();
        if c != 0 {
            m.insert(Vec::new(), c);
        }
        Poly(m)
    }

    /// The symbol `s`.
    pub fn symbol(s: &str) -> Poly {
        Poly(BTreeMap::from([(vec![s.to_string()], 1)]))
    }

    /// The value, when the polynomial is a constant.
    pub fn as_const(&self) -> Option<i64> {
        match self.0.len() {
            0 => Some(0),
            1 => self.0.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// The symbol name, when the polynomial is exactly one symbol.
    pub fn as_symbol(&self) -> Option<&str> {
        match self.0.iter().next() {
            Some((m, 1)) if self.0.len() == 1 && m.len() == 1 => Some(&m[0]),
            _ => None,
        }
    }

    /// `self + o`, None on overflow.
    pub fn add(&self, o: &Poly) -> Option<Poly> {
        let mut m = self.0.clone();
        for (k, c) in &o.0 {
            let e = m.entry(k.clone()).or_insert(0);
            *e = e.checked_add(*c)?;
        }
        m.retain(|_, c| *c != 0);
        Some(Poly(m))
    }

    /// `self - o`, None on overflow.
    pub fn sub(&self, o: &Poly) -> Option<Poly> {
        self.add(&o.scale(-1)?)
    }

    /// `self × c`, None on overflow.
    pub fn scale(&self, c: i64) -> Option<Poly> {
        let mut m = BTreeMap::new();
        for (k, v) in &self.0 {
            let p = v.checked_mul(c)?;
            if p != 0 {
                m.insert(k.clone(), p);
            }
        }
        Some(Poly(m))
    }

    /// `self × o`, None on overflow.
    pub fn mul(&self, o: &Poly) -> Option<Poly> {
        let mut acc = Poly::default();
        for (ka, ca) in &self.0 {
            for (kb, cb) in &o.0 {
                let mut k: Vec<String> = ka.iter().chain(kb).cloned().collect();
                k.sort();
                let term = Poly(BTreeMap::from([(k, ca.checked_mul(*cb)?)]));
                acc = acc.add(&term)?;
            }
        }
        Some(acc)
    }

    /// `self / o` when the division is exact term by term (by a constant or by a single
    /// monomial), else None.
    pub fn div_exact(&self, o: &Poly) -> Option<Poly> {
        if o.0.len() != 1 {
            return None;
        }
        let (dm, dc) = o.0.iter().next()?;
        let mut m = BTreeMap::new();
        for (k, c) in &self.0 {
            if c % dc != 0 {
                return None;
            }
            let mut rest = k.clone();
            for s in dm {
                let i = rest.iter().position(|x| x == s)?;
                rest.remove(i);
            }
            m.insert(rest, c / dc);
        }
        Some(Poly(m))
    }

    /// `floor(self / c)` for a positive constant `c`: exact for constants and for
    /// polynomials whose coefficients `c` divides, else None.
    pub fn floor_div(&self, c: i64) -> Option<Poly> {
        if c <= 0 {
            return None;
        }
        if let Some(v) = self.as_const() {
            return Some(Poly::constant(v.div_euclid(c)));
        }
        self.div_exact(&Poly::constant(c))
    }

    /// `ceil(self / c)` for a positive constant `c`.
    pub fn ceil_div(&self, c: i64) -> Option<Poly> {
        self.add(&Poly::constant(c.checked_sub(1)?))?.floor_div(c)
    }

    /// Replaces symbols by the values bound to them.
    pub fn substitute(&self, bind: &dyn Fn(&str) -> Option<i64>) -> Option<Poly> {
        let mut acc = Poly::default();
        for (k, c) in &self.0 {
            let mut term = Poly::constant(*c);
            for s in k {
                let f = bind(s).map_or_else(|| Poly::symbol(s), Poly::constant);
                term = term.mul(&f)?;
            }
            acc = acc.add(&term)?;
        }
        Some(acc)
    }

    /// Parses `2*batch*seq+1`-style text; anything else is one opaque symbol.
    pub fn parse(s: &str) -> Poly {
        parse_sum(s).unwrap_or_else(|| Poly::symbol(s))
    }

    /// The terms: (symbols of the monomial, coefficient), highest degree first.
    pub fn terms(&self) -> Vec<(&[String], i64)> {
        let mut t: Vec<(&[String], i64)> = self.0.iter().map(|(m, c)| (m.as_slice(), *c)).collect();
        t.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        t
    }

    /// The polynomial of a dim (None for an unknown dim).
    pub fn of_dim(d: &Dim) -> Option<Poly> {
        match d {
            Dim::Known(n) => Some(Poly::constant(*n)),
            Dim::Param(p) => Some(Poly::parse(p)),
            Dim::Unknown => None,
        }
    }

    /// The dim for this polynomial: known for constants, a `dim_param` otherwise.
    pub fn to_dim(&self) -> Dim {
        match self.as_const() {
            Some(c) => Dim::Known(c),
            None => Dim::Param(self.to_string()),
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut ch = s.chars();
    ch.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_sum(s: &str) -> Option<Poly> {
    let s = s.trim();
    if s.is_empty() || !s.contains(['+', '-', '*']) {
        return None;
    }
    let mut acc = Poly::default();
    let mut term = String::new();
    let mut sign = 1;
    let flush = |term: &str, sign: i64, acc: &mut Poly| -> Option<()> {
        *acc = acc.add(&parse_product(term)?.scale(sign)?)?;
        Some(())
    };
    for (i, c) in s.char_indices() {
        if (c == '+' || c == '-') && i > 0 {
            flush(&term, sign, &mut acc)?;
            term.clear();
            sign = if c == '-' { -1 } else { 1 };
        } else if c == '-' {
            sign = -1;
        } else {
            term.push(c);
        }
    }
    flush(&term, sign, &mut acc)?;
    Some(acc)
}

fn parse_product(t: &str) -> Option<Poly> {
    let mut acc = Poly::constant(1);
    for f in t.split('*') {
        let f = f.trim();
        let p = if let Ok(n) = f.parse::<i64>() {
            Poly::constant(n)
        } else if is_ident(f) {
            Poly::symbol(f)
        } else {
            return None;
        };
        acc = acc.mul(&p)?;
    }
    Some(acc)
}

impl fmt::Display for Poly {
    /// Highest-degree terms first, the constant last: `2*batch*seq+1`, `seq-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("0");
        }
        let mut terms: Vec<(&Vec<String>, &i64)> = self.0.iter().collect();
        terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        for (i, (m, c)) in terms.into_iter().enumerate() {
            let (neg, mag) = (*c < 0, c.unsigned_abs());
            match (i, neg) {
                (0, true) => f.write_str("-")?,
                (_, true) => f.write_str("-")?,
                (0, false) => {}
                (_, false) => f.write_str("+")?,
            }
            if m.is_empty() {
                write!(f, "{mag}")?;
                continue;
            }
            if mag != 1 {
                write!(f, "{mag}*")?;
            }
            f.write_str(&m.join("*"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_then_reshape_back() {
        let (b, s) = (Poly::symbol("batch"), Poly::symbol("seq"));
        let total = b.mul(&s).unwrap().scale(768).unwrap();
        assert_eq!(total.to_string(), "768*batch*seq");
        let back = total.div_exact(&b.mul(&Poly::constant(12 * 64)).unwrap());
        assert_eq!(back, Some(s.clone()));
        assert_eq!(Poly::parse(&total.to_string()), total);
    }

    #[test]
    fn sums_print_and_parse() {
        let p = Poly::symbol("seq").add(&Poly::constant(-1)).unwrap();
        assert_eq!(p.to_string(), "seq-1");
        assert_eq!(Poly::parse("seq-1"), p);
        assert_eq!(Poly::parse("-1+seq"), p);
        assert_eq!(Poly::parse("unk__0"), Poly::symbol("unk__0"));
        assert_eq!(Poly::parse("a b"), Poly::symbol("a b"));
    }

    #[test]
    fn division_only_when_exact() {
        let p = Poly::parse("2*h+6");
        assert_eq!(p.floor_div(2), Some(Poly::parse("h+3")));
        assert_eq!(p.floor_div(4), None);
        assert_eq!(Poly::constant(7).floor_div(2), Some(Poly::constant(3)));
        assert_eq!(Poly::constant(7).ceil_div(2), Some(Poly::constant(4)));
    }

    #[test]
    fn substitution_binds_symbols() {
        let p = Poly::parse("batch*seq+1");
        let q = p.substitute(&|s| (s == "batch").then_some(2)).unwrap();
        assert_eq!(q.to_string(), "2*seq+1");
    }
}
