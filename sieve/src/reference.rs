//! An independent list of primes, to check the pipeline's output against (`--verify`).
//!
//! A segmented sieve of Eratosthenes over odd numbers only: one byte per odd number, 32 KiB
//! segments (so a segment stays in L1), and the base primes up to `√n` found the same way,
//! recursively. Memory beyond the output is O(√n / ln √n + 32 KiB), so 10⁹ needs a few hundred
//! KiB besides the 50.8 million primes themselves; use [`for_each_prime_up_to`] or
//! [`count_primes_up_to`] to avoid storing them.

use std::convert::Infallible;

/// Odd numbers per segment: one byte each, 32 KiB.
const SEGMENT: u64 = 32 * 1024;

/// All primes `≤ n`, in increasing order.
pub fn primes_up_to(n: u64) -> Vec<u64> {
    let mut primes = Vec::new();
    // Reserving the Rosser–Schoenfeld bound avoids doubling a 400 MB vector at 10⁹; if the
    // allocation is refused, growing as needed still works.
    let _ = primes.try_reserve(prime_count_upper_bound(n));
    for_each_prime_up_to(n, |p| primes.push(p));
    primes
}

/// π(n): how many primes are `≤ n`, without storing them.
pub fn count_primes_up_to(n: u64) -> u64 {
    let mut count = 0u64;
    for_each_prime_up_to(n, |_| count += 1);
    count
}

/// Calls `f` with every prime `≤ n`, in increasing order.
pub fn for_each_prime_up_to(n: u64, mut f: impl FnMut(u64)) {
    let Ok(()) = try_for_each_prime_up_to(n, |p| {
        f(p);
        Ok::<(), Infallible>(())
    });
}

/// Calls `f` with every prime `≤ n`, in increasing order, until it returns an error, which
/// ends the sieving and is returned.
///
/// ```
/// let mut seen = Vec::new();
/// let stopped = sieve::reference::try_for_each_prime_up_to(1_000_000_000_000, |p| {
///     seen.push(p);
///     if p < 10 { Ok(()) } else { Err(p) }
/// });
/// assert_eq!((stopped, seen), (Err(11), vec![2, 3, 5, 7, 11]));
/// ```
pub fn try_for_each_prime_up_to<E>(n: u64, mut f: impl FnMut(u64) -> Result<(), E>) -> Result<(), E> {
    if n < 2 {
        return Ok(());
    }
    f(2)?;
    let base = odd_primes_up_to(isqrt(n));
    sieve_odd(n, &base, &mut f)
}

/// The odd primes `≤ m`, collected (used for base primes, which are few).
fn odd_primes_up_to(m: u64) -> Vec<u64> {
    if m < 9 {
        // No composite odd number below 9: nothing to sieve, and this ends the recursion.
        return [3, 5, 7].into_iter().filter(|&p| p <= m).collect();
    }
    let base = odd_primes_up_to(isqrt(m));
    let mut out = Vec::new();
    let Ok(()) = sieve_odd(m, &base, &mut |p| {
        out.push(p);
        Ok::<(), Infallible>(())
    });
    out
}

/// Emits the odd primes in `3..=n`, given every odd prime `≤ √n` in increasing order.
///
/// Works on odd indices `k` standing for the number `2k + 1`; consecutive odd multiples of `p`
/// are `p` indices apart.
fn sieve_odd<E>(n: u64, base: &[u64], f: &mut impl FnMut(u64) -> Result<(), E>) -> Result<(), E> {
    if n < 3 {
        return Ok(());
    }
    let last_k = (n - 1) / 2;
    // Next index to strike for each base prime, starting at p² (smaller multiples have a
    // smaller factor). p ≤ √n < 2³², so p² fits.
    let mut next: Vec<u64> = base.iter().map(|&p| (p * p - 1) / 2).collect();
    let mut composite = vec![false; SEGMENT as usize];
    let mut lo_k = 1u64; // the number 3
    while lo_k <= last_k {
        let hi_k = last_k.min(lo_k + (SEGMENT - 1));
        // Both bounds are within one segment, so the length fits in usize.
        let len = (hi_k - lo_k + 1) as usize;
        let window = &mut composite[..len];
        window.fill(false);
        for (&p, next_k) in base.iter().zip(next.iter_mut()) {
            let mut k = *next_k;
            while k <= hi_k {
                window[(k - lo_k) as usize] = true;
                k += p;
            }
            *next_k = k;
        }
        for (i, &is_composite) in window.iter().enumerate() {
            if !is_composite {
                f(2 * (lo_k + i as u64) + 1)?;
            }
        }
        lo_k = hi_k + 1;
    }
    Ok(())
}

/// ⌊√n⌋, exactly.
///
/// ```
/// assert_eq!(sieve::reference::isqrt(99), 9);
/// assert_eq!(sieve::reference::isqrt(u64::MAX), u64::from(u32::MAX));
/// ```
pub fn isqrt(n: u64) -> u64 {
    n.isqrt()
}

/// Up to here [`prime_count_range`] counts π(n) itself: a few ms of sieving at most, for a
/// check before a run of seconds. Beyond, it gives bounds, which are loose for small n (the
/// lower one says 0 below 17).
pub const EXACT_UP_TO: u64 = 10_000_000;

/// π(n) from below and from above: π(n) itself for both up to [`EXACT_UP_TO`], its bounds
/// beyond.
///
/// ```
/// use sieve::reference::prime_count_range;
/// assert_eq!(prime_count_range(1_000_000), (78_498, 78_498));
/// let (low, high) = prime_count_range(100_000_000);
/// assert!(low <= 5_761_455 && 5_761_455 <= high);
/// ```
pub fn prime_count_range(n: u64) -> (u64, u64) {
    if n <= EXACT_UP_TO {
        let exact = count_primes_up_to(n);
        (exact, exact)
    } else {
        (prime_count_lower_bound(n), prime_count_upper_bound(n) as u64)
    }
}

/// An upper bound on π(n), the number of primes up to `n`: 1.25506·n/ln n for n ≥ 17
/// (Rosser & Schoenfeld 1962), capped at what `usize` can hold.
///
/// ```
/// assert!(sieve::reference::prime_count_upper_bound(1_000_000) >= 78_498);
/// ```
pub fn prime_count_upper_bound(n: u64) -> usize {
    if n < 17 {
        return 7;
    }
    let x = n as f64;
    let bound = 1.25506 * x / x.ln() + 1.0;
    // `as` saturates for floats out of range.
    bound as usize
}

/// A lower bound on π(n): n/ln n for n ≥ 17 (Rosser & Schoenfeld 1962), 0 below.
///
/// ```
/// assert!(sieve::reference::prime_count_lower_bound(1_000_000) <= 78_498);
/// ```
pub fn prime_count_lower_bound(n: u64) -> u64 {
    if n < 17 {
        return 0;
    }
    let x = n as f64;
    // Rounded down, and a hair below for the float's own error.
    (x / x.ln() * (1.0 - 1e-9)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_prime_by_trial_division(n: u64) -> bool {
        if n < 2 {
            return false;
        }
        let mut d = 2;
        while d * d <= n {
            if n.is_multiple_of(d) {
                return false;
            }
            d += 1;
        }
        true
    }

    #[test]
    fn small_limits_against_trial_division() {
        let all: Vec<u64> = (0..=3000).filter(|&n| is_prime_by_trial_division(n)).collect();
        for n in 0..=3000u64 {
            let expected: Vec<u64> = all.iter().copied().take_while(|&p| p <= n).collect();
            assert_eq!(primes_up_to(n), expected, "n = {n}");
        }
    }

    #[test]
    fn segment_boundaries() {
        // Last odd of segment 0 is 2·SEGMENT + 1; try limits around the first three boundaries.
        for seg in 1..=3u64 {
            let edge = 2 * seg * SEGMENT + 1;
            for n in edge - 4..=edge + 4 {
                let got = primes_up_to(n);
                let expected_last = (0..=n).rev().find(|&m| is_prime_by_trial_division(m));
                assert_eq!(got.last().copied(), expected_last, "n = {n}");
                assert!(got.windows(2).all(|w| w[0] < w[1]));
            }
        }
        let got = primes_up_to(4 * SEGMENT + 100);
        let expected: Vec<u64> = (0..=4 * SEGMENT + 100).filter(|&m| is_prime_by_trial_division(m)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn known_prime_counts() {
        assert_eq!(primes_up_to(100_000).len(), 9592);
        assert_eq!(count_primes_up_to(1_000_000), 78_498);
        assert_eq!(count_primes_up_to(10_000_000), 664_579);
        assert_eq!(count_primes_up_to(1 << 20), 82_025);
    }

    #[test]
    fn isqrt_is_exact() {
        for n in 0..100_000u64 {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "n = {n}");
        }
        for r in [1u64 << 31, (1 << 32) - 1, 3_037_000_499, 1_000_000_007] {
            for n in [r * r - 1, r * r, r * r + 1] {
                let s = isqrt(n);
                assert!(s * s <= n && u128::from(s + 1).pow(2) > u128::from(n), "n = {n}");
            }
        }
        assert_eq!(isqrt(u64::MAX), u64::from(u32::MAX));
    }

    #[test]
    fn bounds_enclose_the_count() {
        for n in [0u64, 1, 2, 16, 17, 18, 100, 10_000, 1_000_000, 3_000_000] {
            let count = count_primes_up_to(n);
            assert!(count as usize <= prime_count_upper_bound(n), "n = {n}");
            assert!(prime_count_lower_bound(n) <= count, "n = {n}");
        }
        assert!(prime_count_lower_bound(1_000_000) > 70_000, "not trivially low");
    }
}
