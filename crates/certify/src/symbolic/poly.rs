//! Integer polynomials over the model inputs' dims: what a dim or a shape value is when
//! it is computed from sizes the file leaves open (`batch * seq`, `seq + 1`). Two dims
//! are equal for every input when their polynomials are equal.
//!
//! `whittle_ir::infer` has polynomials of its own, which the passes' guards rely on; the
//! checker does not use them, so that a mistake there cannot prove a rewrite it let
//! through.

use std::collections::BTreeMap;
use std::fmt;

/// A polynomial with integer coefficients: monomial (sorted symbol ids, repeated for
/// powers) → coefficient, zero terms dropped. Arithmetic that would overflow gives None.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Poly(BTreeMap<Vec<u32>, i64>);

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
    pub fn symbol(s: u32) -> Poly {
        Poly(BTreeMap::from([(vec![s], 1)]))
    }

    /// The value, when the polynomial is a constant.
    pub fn as_const(&self) -> Option<i64> {
        match self.0.len() {
            0 => Some(0),
            1 => self.0.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// Whether the polynomial is >= 0 for every input: every coefficient is (symbols
    /// are dims, never negative).
    pub fn non_negative(&self) -> bool {
        self.0.values().all(|c| *c >= 0)
    }

    /// `self + other`.
    pub fn add(&self, other: &Poly) -> Option<Poly> {
        let mut m = self.0.clone();
        for (mono, c) in &other.0 {
            let e = m.entry(mono.clone()).or_insert(0);
            *e = e.checked_add(*c)?;
            if *e == 0 {
                m.remove(mono);
            }
        }
        Some(Poly(m))
    }

    /// `-self`.
    pub fn neg(&self) -> Option<Poly> {
        let m = self
            .0
            .iter()
            .map(|(k, c)| Some((k.clone(), c.checked_neg()?)))
            .collect::<Option<_>>()?;
        Some(Poly(m))
    }

    /// `self - other`.
    pub fn sub(&self, other: &Poly) -> Option<Poly> {
        self.add(&other.neg()?)
    }

    /// `self * other`.
    pub fn mul(&self, other: &Poly) -> Option<Poly> {
        let mut out = Poly::default();
        for (ma, ca) in &self.0 {
            for (mb, cb) in &other.0 {
                let mut mono: Vec<u32> = ma.iter().chain(mb).copied().collect();
                mono.sort_unstable();
                let term = Poly(BTreeMap::from([(mono, ca.checked_mul(*cb)?)]));
                out = out.add(&term)?;
            }
        }
        Some(out)
    }

    /// `self / other` when `other` is one monomial dividing every term of `self` exactly
    /// (then integer division truncating or flooring gives the same); None otherwise.
    pub fn div_exact(&self, other: &Poly) -> Option<Poly> {
        if other.0.len() != 1 {
            return None;
        }
        let (dm, dc) = other.0.iter().next()?;
        let mut out = BTreeMap::new();
        for (mono, c) in &self.0 {
            if c % dc != 0 {
                return None;
            }
            let mut rest = mono.clone();
            for s in dm {
                let at = rest.iter().position(|r| r == s)?;
                rest.remove(at);
            }
            out.insert(rest, c / dc);
        }
        Some(Poly(out))
    }

    /// The product of `dims`.
    pub fn product<'a>(dims: impl IntoIterator<Item = &'a Poly>) -> Option<Poly> {
        dims.into_iter()
            .try_fold(Poly::constant(1), |acc, d| acc.mul(d))
    }
}

impl fmt::Display for Poly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("0");
        }
        for (i, (mono, c)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            let vars: Vec<String> = mono.iter().map(|s| format!("d{s}")).collect();
            match (mono.is_empty(), *c) {
                (true, c) => write!(f, "{c}")?,
                (false, 1) => f.write_str(&vars.join("·"))?,
                (false, c) => write!(f, "{c}·{}", vars.join("·"))?,
            }
        }
        Ok(())
    }
}
