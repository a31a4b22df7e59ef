//! The lemmas the checker relies on, checked once for every case their guards admit.
//!
//! Transpose composition is pure data movement, so an index map decides it: a tensor
//! whose elements are their own flat indices, moved by an independent Transpose written
//! here, shows where every element goes. Every pair of permutations of rank 1 to 5 is
//! tried on dims 2..=6 (all distinct, so no two axes can be confused); the map does not
//! depend on the sizes, only on which axis goes where.
//!
//! The folds into a Conv or Gemm are identities over the reals, checked as polynomial
//! identities (below).

use whittle_certify::lemma::compose;
use whittle_certify::symbolic::poly::Poly;

/// Transpose by definition: output index i reads input index j with j[perm[k]] = i[k].
fn transpose(data: &[usize], dims: &[usize], perm: &[i64]) -> (Vec<usize>, Vec<usize>) {
    let out_dims: Vec<usize> = perm.iter().map(|&a| dims[a as usize]).collect();
    let strides: Vec<usize> = (0..dims.len())
        .map(|k| dims[k + 1..].iter().product())
        .collect();
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..total {
        let src: usize = perm
            .iter()
            .zip(&idx)
            .map(|(&a, &i)| i * strides[a as usize])
            .sum();
        out.push(data[src]);
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            if idx[k] < out_dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    (out, out_dims)
}

fn perms(n: usize) -> Vec<Vec<i64>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in perms(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, (n - 1) as i64);
            out.push(q);
        }
    }
    out
}

#[test]
fn transpose_pairs_compose_to_the_checkers_permutation_for_every_pair_up_to_rank_5() {
    let mut pairs = 0;
    for rank in 1..=5 {
        let dims: Vec<usize> = (2..2 + rank).collect();
        let x: Vec<usize> = (0..dims.iter().product()).collect();
        let all = perms(rank);
        for p in &all {
            let (t, td) = transpose(&x, &dims, p);
            for q in &all {
                let (y, yd) = transpose(&t, &td, q);
                let r = compose(p, q).expect("permutations of one rank compose");
                let (z, zd) = transpose(&x, &dims, &r);
                assert_eq!((y, yd), (z, zd), "p={p:?} q={q:?} r={r:?}");
                pairs += 1;
            }
        }
    }
    assert_eq!(pairs, 1 + 4 + 36 + 576 + 14400);
}

#[test]
fn what_is_not_a_pair_of_permutations_does_not_compose() {
    assert_eq!(compose(&[0, 1], &[0, 1, 2]), None);
    assert_eq!(compose(&[0, 0], &[1, 0]), None);
    assert_eq!(compose(&[0, 2], &[1, 0]), None);
    assert_eq!(compose(&[-1, 0], &[1, 0]), None);
    assert_eq!(compose(&[1, 0], &[1, 0]), Some(vec![0, 1]));
}

// The arithmetic lemmas, over the reals: each side is written as a polynomial in
// symbols (inputs, weights, the per-channel constants) and both are brought to one
// normal form, a sum of monomials with integer coefficients, which decides a polynomial
// identity exactly. A CAS or SMT crate would do the same here at the cost of a C++
// build (z3) or a proprietary licence (symbolica); the checker's own `Poly` serves.

/// Symbol ids for one output element of a Conv or Gemm over `n` products: inputs
/// `x_k`, weights `w_k`, the bias `b`, and the channel's `a` and `d` (then `mu`, `beta`).
struct Syms {
    n: usize,
}

impl Syms {
    fn x(&self, k: usize) -> Poly {
        Poly::symbol(k as u32)
    }
    fn w(&self, k: usize) -> Poly {
        Poly::symbol((self.n + k) as u32)
    }
    fn named(&self, i: usize) -> Poly {
        Poly::symbol((2 * self.n + i) as u32)
    }
}

/// `sum_k w_k x_k + b`: one output element of a Conv or Gemm (any window, any layout:
/// each output element is such a sum, with its own terms).
fn linear(s: &Syms, weights: &[Poly], bias: &Poly) -> Poly {
    (0..s.n).fold(bias.clone(), |acc, k| {
        acc.add(&weights[k].mul(&s.x(k)).unwrap()).unwrap()
    })
}

#[test]
fn an_affine_map_after_a_conv_or_gemm_folds_into_its_weights_over_the_reals() {
    for n in 1..=9 {
        let s = Syms { n };
        let (b, a, d) = (s.named(0), s.named(1), s.named(2));
        let w: Vec<Poly> = (0..n).map(|k| s.w(k)).collect();
        // a·(sum w x + b) + d  ==  sum (a·w) x + (a·b + d)
        let before = a.mul(&linear(&s, &w, &b)).unwrap().add(&d).unwrap();
        let aw: Vec<Poly> = w.iter().map(|w| a.mul(w).unwrap()).collect();
        let folded_bias = a.mul(&b).unwrap().add(&d).unwrap();
        assert_eq!(before, linear(&s, &aw, &folded_bias), "n = {n}");
        // A wrong fold (the bias not scaled) is a different polynomial.
        assert_ne!(before, linear(&s, &aw, &b.add(&d).unwrap()), "n = {n}");
    }
}

#[test]
fn batchnorm_is_the_affine_map_the_conv_fold_uses() {
    // BN(y) = s·(y − mu) + beta with s = gamma / sqrt(var + eps) taken as one symbol
    // per channel: that is a·y + d with a = s and d = beta − s·mu, and
    // (b − mu)·s + beta = a·b + d is the folded bias the lemma recomputes.
    let s = Syms { n: 1 };
    let (y, b) = (s.x(0), s.named(0));
    let (scale, mu, beta) = (s.named(1), s.named(2), s.named(3));
    let bn = scale.mul(&y.sub(&mu).unwrap()).unwrap().add(&beta).unwrap();
    let d = beta.sub(&scale.mul(&mu).unwrap()).unwrap();
    assert_eq!(bn, scale.mul(&y).unwrap().add(&d).unwrap());
    let folded = b.sub(&mu).unwrap().mul(&scale).unwrap().add(&beta).unwrap();
    assert_eq!(folded, scale.mul(&b).unwrap().add(&d).unwrap());
}

#[test]
fn per_channel_add_and_mul_fold_into_the_bias_and_weights() {
    for n in 1..=9 {
        let s = Syms { n };
        let (b, c) = (s.named(0), s.named(1));
        let w: Vec<Poly> = (0..n).map(|k| s.w(k)).collect();
        // (sum w x + b) + c == sum w x + (b + c)
        let added = linear(&s, &w, &b).add(&c).unwrap();
        assert_eq!(added, linear(&s, &w, &b.add(&c).unwrap()));
        // (sum w x + b)·c == sum (w·c) x + b·c
        let scaled = linear(&s, &w, &b).mul(&c).unwrap();
        let wc: Vec<Poly> = w.iter().map(|w| w.mul(&c).unwrap()).collect();
        assert_eq!(scaled, linear(&s, &wc, &b.mul(&c).unwrap()));
    }
}

#[test]
fn polynomial_arithmetic_is_exact_and_division_only_when_it_divides() {
    let (b, s) = (Poly::symbol(0), Poly::symbol(1));
    let bs512 = b.mul(&s).unwrap().mul(&Poly::constant(512)).unwrap();
    let bs8 = b.mul(&s).unwrap().mul(&Poly::constant(8)).unwrap();
    assert_eq!(bs512.div_exact(&bs8), Some(Poly::constant(64)));
    assert_eq!(bs512.div_exact(&Poly::constant(3)), None);
    let s1 = s.add(&Poly::constant(1)).unwrap();
    assert_eq!(s1.sub(&s).unwrap().as_const(), Some(1));
    assert_eq!(s1.div_exact(&s), None);
    assert_eq!(Poly::constant(i64::MAX).add(&Poly::constant(1)), None);
}
