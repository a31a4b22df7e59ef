//! The one bisection under whittle's searches: `--verify` looks for the first rewrite
//! that breaks the outputs, a quantization budget for the fewest layers kept float.

/// The least `x` in `(lo, hi]` for which `p(x)` is true, given `p(lo)` is false and
/// `p(hi)` true (neither is evaluated) and `p` monotone; `hi` when `hi - lo <= 1`.
/// Evaluates `p` about log2(hi - lo) times; an error from `p` stops the search.
pub fn least_true<E>(
    mut lo: usize,
    mut hi: usize,
    mut p: impl FnMut(usize) -> Result<bool, E>,
) -> Result<usize, E> {
    while hi > lo + 1 {
        let mid = lo + (hi - lo) / 2;
        if p(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::least_true;

    #[test]
    fn finds_the_boundary_with_log_many_probes() {
        for boundary in 1..=40usize {
            let mut probes = 0;
            let got = least_true(0, 40, |x| {
                probes += 1;
                Ok::<_, ()>(x >= boundary)
            });
            assert_eq!(got, Ok(boundary));
            assert!(probes <= 6, "{probes} probes for {boundary}");
        }
        assert_eq!(
            least_true(3, 4, |_| Err::<bool, ()>(())),
            Ok(4),
            "nothing to probe"
        );
        assert_eq!(least_true(0, 9, |_| Err::<bool, &str>("stop")), Err("stop"));
    }
}
