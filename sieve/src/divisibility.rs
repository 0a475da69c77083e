//! Exact divisibility of a `u64` by a fixed divisor, without a hardware division per test.
//!
//! Every pipeline stage asks "does this prime divide n?" millions of times against the same
//! few primes, and a 64-bit `div` costs tens of cycles. For an odd divisor `q` the test can be
//! done with one multiplication and one comparison (Granlund & Montgomery 1994; Lemire, Kaser &
//! Kurz 2019): multiplication by `q⁻¹ mod 2⁶⁴` permutes `u64` and maps exactly the multiples of
//! `q` onto `0..=⌊(2⁶⁴−1)/q⌋`, so `q | n ⇔ n·q⁻¹ mod 2⁶⁴ ≤ ⌊(2⁶⁴−1)/q⌋`. An even divisor
//! `2ᵏ·q` divides `n` iff `2ᵏ | n` (trailing zeros) and `q | n`.

/// A precomputed divisor: answers `n % d == 0` exactly for any `n: u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divisor {
    /// The divisor as given.
    divisor: u64,
    /// Multiplicative inverse of the odd part modulo 2⁶⁴.
    inverse: u64,
    /// `u64::MAX / odd part`: the largest image of a multiple under the inverse.
    limit: u64,
    /// Power of two in the divisor (its trailing zeros).
    shift: u32,
}

impl Divisor {
    /// Precomputes the divisibility test for `d` (normally a prime).
    ///
    /// `d = 0` is accepted and, following "0 divides n iff n = 0", divides only zero; it is
    /// handled so that no user input can make this panic.
    pub fn new(d: u64) -> Self {
        if d == 0 {
            // inverse 1 and limit 0 make `n * 1 <= 0` true only for n = 0; shift 0 is no
            // constraint.
            return Self { divisor: 0, inverse: 1, limit: 0, shift: 0 };
        }
        let shift = d.trailing_zeros();
        let odd = d >> shift;
        Self { divisor: d, inverse: inverse_mod_2_64(odd), limit: u64::MAX / odd, shift }
    }

    /// Whether the divisor divides `n` exactly (same answer as `n % d == 0`, with `0 | n` only
    /// for `n = 0`).
    #[inline]
    pub fn divides(&self, n: u64) -> bool {
        // For 2 (the only even prime) this is `n & 1 == 0` plus a test by 1, which always holds.
        n.trailing_zeros() >= self.shift && n.wrapping_mul(self.inverse) <= self.limit
    }

    /// The divisor this test was built for (the stage's prime).
    #[inline]
    pub fn prime(&self) -> u64 {
        self.divisor
    }

    /// The test's constants as `(inverse, limit, even_mask)`: `d | n` iff
    /// `n & even_mask == 0 && n·inverse mod 2⁶⁴ ≤ limit`, where `even_mask = 2ᵏ − 1` for the
    /// power of two `2ᵏ` in `d`. For laying many divisors out side by side.
    #[inline]
    pub fn parts(&self) -> (u64, u64, u64) {
        (self.inverse, self.limit, (1u64 << self.shift) - 1)
    }
}

/// Inverse of odd `q` modulo 2⁶⁴ by Newton–Hensel lifting.
fn inverse_mod_2_64(q: u64) -> u64 {
    debug_assert!(q & 1 == 1, "only odd numbers are invertible modulo 2^64");
    // q·q ≡ 1 (mod 8) for odd q, so q is its own inverse to 3 bits; each step doubles the
    // correct bits: 3 → 6 → 12 → 24 → 48 → 96 ≥ 64.
    let mut x = q;
    for _ in 0..5 {
        x = x.wrapping_mul(2u64.wrapping_sub(q.wrapping_mul(x)));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(n: u64, d: u64) -> bool {
        if d == 0 {
            n == 0
        } else {
            n.is_multiple_of(d)
        }
    }

    #[test]
    fn inverse_is_an_inverse() {
        for q in (1..10_001u64).step_by(2).chain([u64::MAX, u64::MAX - 2, (1 << 63) + 1]) {
            assert_eq!(q.wrapping_mul(inverse_mod_2_64(q)), 1, "q = {q}");
        }
    }

    #[test]
    fn small_divisors_against_remainder() {
        for d in 0..200u64 {
            let div = Divisor::new(d);
            assert_eq!(div.prime(), d);
            for n in 0..10_000u64 {
                assert_eq!(div.divides(n), reference(n, d), "n = {n}, d = {d}");
            }
        }
    }

    #[test]
    fn near_the_top_of_u64() {
        let big_divisors = [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 32) + 15, 4_294_967_291, 18_446_744_073_709_551_557];
        for d in (1..200u64).chain(big_divisors) {
            let div = Divisor::new(d);
            for k in 0..2_000u64 {
                let n = u64::MAX - k;
                assert_eq!(div.divides(n), reference(n, d), "n = {n}, d = {d}");
            }
            // Exact multiples near the top must be recognised, and their neighbours rejected.
            let top = (u64::MAX / d) * d;
            for m in [top, top - d, d, d.wrapping_mul(2)] {
                assert_eq!(div.divides(m), reference(m, d), "m = {m}, d = {d}");
                assert_eq!(div.divides(m.wrapping_add(1)), reference(m.wrapping_add(1), d));
                assert_eq!(div.divides(m.wrapping_sub(1)), reference(m.wrapping_sub(1), d));
            }
        }
    }

    #[test]
    fn pseudo_random_pairs() {
        // xorshift64*: deterministic, covers the full range of both operands.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for _ in 0..200_000 {
            let d = next() >> (next() % 64);
            let n = next();
            let div = Divisor::new(d);
            assert_eq!(div.divides(n), reference(n, d), "n = {n}, d = {d}");
            // Also a guaranteed multiple, so the "true" branch is exercised for large d.
            if let Some(q) = n.checked_div(d) {
                let m = q * d;
                assert!(div.divides(m), "m = {m}, d = {d}");
            }
        }
    }
}
