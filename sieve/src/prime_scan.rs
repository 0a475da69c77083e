//! A stage's primes laid out for the original's inner loop, and that loop run eight primes at
//! a time where the CPU can.
//!
//! `is_relatively_prime(n, primes)` stops at the first prime `p` with `n < 2p` (relatively
//! prime) or `p | n` (not). The two conditions of one prime do not depend on the others, so a
//! block of primes can be checked at once and the loop's exit found as the block's lowest set
//! bit; the number of `%` the original evaluates follows from where it exits. With AVX-512
//! (`avx512dq` brings the 64-bit multiply) a block of eight primes is a handful of
//! instructions; without it, or for the last few primes, the same loop runs one prime at a
//! time. The primes and their test constants sit in parallel arrays so that each block is one
//! contiguous load per array, padded to whole blocks with a sentinel that ends every scan
//! (`p = u64::MAX`: `n/2 < p` for every `n`), so no scan needs a tail loop.
//!
//! The answer and the test count are the same either way, and the same in every mode (the
//! pipeline's stages, the sequential baseline, the threads peer): this is the one inner loop.

use crate::divisibility::Divisor;

/// Primes in ascending order with their divisibility constants (see [`Divisor::parts`]).
#[derive(Debug, Clone)]
pub struct PrimeTable {
    /// Real primes in the arrays; the rest, at least one and up to a whole block, are
    /// sentinels.
    len: usize,
    primes: Vec<u64>,
    inverses: Vec<u64>,
    limits: Vec<u64>,
    even_masks: Vec<u64>,
    /// Whether this CPU runs the eight-wide scan (checked once, at creation).
    wide: bool,
}

/// Primes per block of the wide scan.
const LANES: usize = 8;

impl PrimeTable {
    /// An empty table with room for `capacity` primes.
    pub fn with_capacity(capacity: usize) -> Self {
        let room = (capacity + 1).div_ceil(LANES) * LANES;
        let mut table = Self {
            len: 0,
            primes: Vec::with_capacity(room),
            inverses: Vec::with_capacity(room),
            limits: Vec::with_capacity(room),
            even_masks: Vec::with_capacity(room),
            wide: wide_scan_available(),
        };
        table.pad();
        table
    }

    /// Appends a block of sentinels. A sentinel stops the scan before its divisibility test
    /// (and its constants would not divide anything but 0 anyway).
    fn pad(&mut self) {
        self.primes.extend([u64::MAX; LANES]);
        self.inverses.extend([1; LANES]);
        self.limits.extend([0; LANES]);
        self.even_masks.extend([0; LANES]);
    }

    /// Appends a prime; primes must come in ascending order, as a stage receives them (a
    /// prime of `u64::MAX` would read as the end of the table).
    pub fn push(&mut self, prime: u64) {
        let (inverse, limit, even_mask) = Divisor::new(prime).parts();
        let at = self.len;
        self.primes[at] = prime;
        self.inverses[at] = inverse;
        self.limits[at] = limit;
        self.even_masks[at] = even_mask;
        self.len += 1;
        if self.len == self.primes.len() {
            // At least one sentinel always follows the primes.
            self.pad();
        }
    }

    /// The primes, first first.
    pub fn primes(&self) -> &[u64] {
        &self.primes[..self.len]
    }

    /// The original's `is_relatively_prime(n, primes)`: whether `n` is relatively prime to
    /// the table's primes, and how many divisibility tests (`n % p`) the original evaluates
    /// to find out.
    // Always inline, so that a caller compiled for AVX-512 inlines `scan_wide` as well.
    #[inline(always)]
    pub fn scan(&self, n: u64) -> (bool, u64) {
        #[cfg(target_arch = "x86_64")]
        if self.wide {
            // SAFETY: `wide` is set only when the CPU reports AVX-512F and AVX-512DQ.
            return unsafe { self.scan_wide(n) };
        }
        self.scan_narrow(n)
    }

    /// One prime at a time; the sentinels end the loop.
    #[inline]
    fn scan_narrow(&self, n: u64) -> (bool, u64) {
        // `n < 2p` written as `n/2 < p`, which cannot overflow and is equivalent for integers.
        let half = n >> 1;
        let constants = self.inverses.iter().zip(&self.limits).zip(&self.even_masks);
        for (i, (&p, ((&inverse, &limit), &even_mask))) in self.primes.iter().zip(constants).enumerate() {
            if half < p {
                return (true, i as u64);
            }
            if n & even_mask == 0 && n.wrapping_mul(inverse) <= limit {
                return (false, i as u64 + 1);
            }
        }
        unreachable!("the sentinels stop every scan")
    }

    /// Eight primes per step with AVX-512; the sentinels end the loop.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512DQ.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq")]
    #[inline]
    unsafe fn scan_wide(&self, n: u64) -> (bool, u64) {
        use std::arch::x86_64::{
            _mm512_cmple_epu64_mask, _mm512_cmplt_epu64_mask, _mm512_loadu_epi64, _mm512_mullo_epi64,
            _mm512_set1_epi64, _mm512_testn_epi64_mask,
        };
        let half = n >> 1;
        let numbers = _mm512_set1_epi64(n as i64);
        let halves = _mm512_set1_epi64(half as i64);
        for at in (0..self.primes.len()).step_by(LANES) {
            // SAFETY: the arrays hold whole blocks (`len % LANES == 0` for all four), so
            // `at + LANES <= len`; the loads are unaligned loads of plain integers.
            let (primes, inverses, limits, even_masks) = unsafe {
                (
                    _mm512_loadu_epi64(self.primes.as_ptr().add(at).cast()),
                    _mm512_loadu_epi64(self.inverses.as_ptr().add(at).cast()),
                    _mm512_loadu_epi64(self.limits.as_ptr().add(at).cast()),
                    _mm512_loadu_epi64(self.even_masks.as_ptr().add(at).cast()),
                )
            };
            let stops = _mm512_cmplt_epu64_mask(halves, primes);
            let divides = _mm512_cmple_epu64_mask(_mm512_mullo_epi64(numbers, inverses), limits)
                & _mm512_testn_epi64_mask(numbers, even_masks);
            let exits = stops | divides;
            if exits != 0 {
                let lane = exits.trailing_zeros() as usize;
                // The original checks `n < 2p` before `p | n` for the same prime.
                return if stops >> lane & 1 == 1 {
                    (true, (at + lane) as u64)
                } else {
                    (false, (at + lane) as u64 + 1)
                };
            }
        }
        unreachable!("the sentinels stop every scan")
    }
}

/// `with_wide_scan!(f(arg: Type, ...) -> Return)`: calls `f`, a function marked
/// `#[inline(always)]`, inlined into a copy compiled for AVX-512 where the CPU has it, so that
/// the eight-wide scan inlines into `f`'s loops ([`PrimeTable::scan`] is otherwise a call per
/// number: 5-7 % of a pipeline stage's or `run_stage_major`'s time at N=10^6). (A generic
/// function taking `f` would not do: `f` would be compiled on its own, without the feature,
/// and call the scan.)
macro_rules! with_wide_scan {
    ($f:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        {
            /// `f`, compiled with AVX-512 enabled.
            ///
            /// # Safety
            /// The CPU must support AVX-512F and AVX-512DQ.
            #[target_feature(enable = "avx512f,avx512dq")]
            unsafe fn wide($($arg: $ty),*) -> $ret {
                $f($($arg),*)
            }
            if $crate::prime_scan::wide_scan_available() {
                // SAFETY: the CPU has AVX-512F and AVX-512DQ, checked just above.
                unsafe { wide($($arg),*) }
            } else {
                $f($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $f($($arg),*)
        }
    }};
}
pub(crate) use with_wide_scan;

/// Whether [`PrimeTable::scan`] can take eight primes at a time on this CPU. The first call
/// asks the CPU (`cpuid`, which traps to the hypervisor in a VM); later ones read a cache, so a
/// process that forks many stages should call it once before it forks.
pub fn wide_scan_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The original's `is_relatively_prime`, verbatim over plain integers, with its count of
    /// `%` evaluations: the oracle for this module and for `stage_logic`.
    pub(crate) fn original(number: u64, primes: &[u64]) -> (bool, u64) {
        let mut tests = 0;
        for &prime in primes {
            if u128::from(number) < u128::from(prime) * 2 {
                return (true, tests);
            }
            tests += 1;
            if number.is_multiple_of(prime) {
                return (false, tests);
            }
        }
        (true, tests)
    }

    fn table(primes: &[u64], wide: bool) -> PrimeTable {
        let mut t = PrimeTable::with_capacity(primes.len());
        for &p in primes {
            t.push(p);
        }
        t.wide = wide && wide_scan_available();
        t
    }

    fn primes_below(n: u64) -> Vec<u64> {
        (2..n).filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0)).collect()
    }

    #[test]
    fn both_scans_answer_and_count_as_the_original_does() {
        let all = primes_below(2_000);
        // Table sizes around the block width, starting at 2 (stage 0) or further in.
        for (start, len) in [(0, 1), (0, 3), (0, 8), (0, 9), (0, 100), (5, 7), (30, 16), (100, 17), (200, 100)] {
            let primes = &all[start..start + len];
            for wide in [false, true] {
                let t = table(primes, wide);
                for n in 0..30_000u64 {
                    assert_eq!(t.scan(n), original(n, primes), "n = {n}, primes {start}+{len}, wide {wide}");
                }
            }
        }
    }

    #[test]
    fn large_numbers_and_primes() {
        let primes = [4_294_967_291u64, 4_294_967_311, 1 << 61, u64::MAX - 58, u64::MAX];
        for wide in [false, true] {
            let t = table(&primes, wide);
            for n in [u64::MAX, u64::MAX - 1, 4_294_967_291 * 3, (1 << 62) + 1, 1 << 63, 9_223_372_036_854_775_807] {
                assert_eq!(t.scan(n), original(n, &primes), "n = {n}, wide {wide}");
            }
        }
    }
}
