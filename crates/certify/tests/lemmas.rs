//! The lemmas the checker relies on, checked once for every case their guards admit.
//!
//! Transpose composition is pure data movement, so an index map decides it: a tensor
//! whose elements are their own flat indices, moved by an independent Transpose written
//! here, shows where every element goes. Every pair of permutations of rank 1 to 5 is
//! tried on dims 2..=6 (all distinct, so no two axes can be confused); the map does not
//! depend on the sizes, only on which axis goes where.

use whittle_certify::lemma::compose;

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
