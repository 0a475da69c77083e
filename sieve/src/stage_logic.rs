//! The decision a pipeline stage makes for each number, separated from any transport.
//!
//! This is `pipeline_stage` and `is_relatively_prime` of the original `prime_numbers.py`
//! (DragonHPC cookbook) minus the queues and processes, so that the multi-process pipeline and
//! the single-process sequential mode run literally the same code and can be compared test for
//! test. The original, for reference:
//!
//! ```text
//! is_relatively_prime(number, primes):
//!     for prime in primes:
//!         if number < prime*2: return True      # "an optimization"
//!         if number % prime == 0: return False
//!     return True
//!
//! on each number from in_queue:
//!     if is_relatively_prime(number, primes):
//!         out_queue.put(number)
//!         if cur_count < stage_size:    primes.append(number)
//!         elif cur_count == stage_size: spawn stage(number, new_queue, out_queue); out_queue = new_queue
//!         cur_count += 1
//! ```
//!
//! Note the order in the spawning case: the number is put on the *old* output queue (the sink)
//! before the splice, so the new stage never receives its own first prime as input.

use crate::prime_scan::PrimeTable;

/// What a stage does with one number it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not relatively prime to the stage's primes: the number goes no further.
    Drop,
    /// Relatively prime, and the stage is full and has already spawned its child: forward it
    /// to the child.
    Forward,
    /// Relatively prime and the stage is not full yet: forward it to the current downstream
    /// (which is the sink, since a stage that still keeps primes has not spawned) AND append it
    /// to the stage's primes.
    Keep,
    /// Relatively prime and it fills the stage: forward it to the current downstream (the sink)
    /// first, THEN create a new stage whose first prime is this number and splice it in
    /// between this stage and the sink. Later forwards go to the new stage.
    SpawnWith,
}

impl Verdict {
    /// Whether the number leaves the stage (every verdict except [`Verdict::Drop`]).
    #[inline]
    pub fn forwards(self) -> bool {
        !matches!(self, Verdict::Drop)
    }
}

/// The state of one pipeline stage: its primes, its counter and its work done.
#[derive(Debug, Clone)]
pub struct StageState {
    /// The stage's primes in arrival order (ascending), first prime first.
    primes: PrimeTable,
    /// `stage_size` of the original: how many primes the stage holds before spawning.
    capacity: u64,
    /// `cur_count` of the original: 1 + relatively prime numbers seen so far.
    cur_count: u64,
    /// Divisibility tests (`number % prime` evaluations of the original) done so far.
    tests_done: u64,
    /// Set when every number reaching this stage is known prime (first prime p with p² > N).
    skip_tests: bool,
}

impl StageState {
    /// A stage holding `first_prime`, which keeps up to `stage_size` primes before spawning.
    ///
    /// `stage_size = 0` (rejected by the original's constructor) is not special-cased: as in
    /// the original's loop, such a stage never keeps and never spawns, it only filters.
    pub fn new(first_prime: u64, stage_size: usize) -> Self {
        let capacity = u64::try_from(stage_size).unwrap_or(u64::MAX);
        let mut primes = PrimeTable::with_capacity(stage_size.clamp(1, 4096));
        primes.push(first_prime);
        Self { primes, capacity, cur_count: 1, tests_done: 0, skip_tests: false }
    }

    /// Enables the square-root cutoff for a run up to `max_number`: if this stage's first prime
    /// `p` has `p² > max_number`, every number reaching the stage is already known to be prime,
    /// so the stage treats it as relatively prime without testing.
    ///
    /// Why this is exact: a number `m` reaching this stage arrived after `p`, passed every
    /// earlier stage, and those hold all primes below `p`; so `m`'s smallest prime factor is at
    /// least `p`, and `m ≤ max_number < p²` makes `m` prime. Output and stage contents are
    /// unchanged; only [`StageState::tests_done`] drops. (Relies on `stage_size ≥ 1`.)
    pub fn with_sqrt_cutoff(mut self, max_number: u64) -> Self {
        let p = u128::from(self.first_prime());
        self.skip_tests = p * p > u128::from(max_number);
        self
    }

    /// Handles one number from the input, exactly as the original stage would, and says where
    /// it goes. Updates the primes, the counter and the test count.
    // Always inline: in the pipeline's AVX-512-compiled loop the scan then inlines too.
    #[inline(always)]
    pub fn offer(&mut self, n: u64) -> Verdict {
        if !self.skip_tests && !self.is_relatively_prime(n) {
            return Verdict::Drop;
        }
        let verdict = if self.cur_count < self.capacity {
            self.primes.push(n);
            Verdict::Keep
        } else if self.cur_count == self.capacity {
            Verdict::SpawnWith
        } else {
            Verdict::Forward
        };
        // Saturating: after 2⁶⁴ numbers it would stay in the "forward" regime anyway.
        self.cur_count = self.cur_count.saturating_add(1);
        verdict
    }

    /// The original's `is_relatively_prime(number, primes)`, counting the divisibility tests.
    // Always inline, as `offer`.
    #[inline(always)]
    fn is_relatively_prime(&mut self, n: u64) -> bool {
        let (relatively_prime, tests) = self.primes.scan(n);
        self.tests_done += tests;
        relatively_prime
    }

    /// The stage's primes in order (first prime first), as the original prints them.
    pub fn primes(&self) -> Vec<u64> {
        self.primes.primes().to_vec()
    }

    /// How many primes the stage holds.
    pub fn primes_held(&self) -> usize {
        self.primes.primes().len()
    }

    /// The prime the stage was created with.
    pub fn first_prime(&self) -> u64 {
        // `new` always pushes one, and the vector only grows.
        self.primes.primes().first().copied().unwrap_or(0)
    }

    /// Divisibility tests done so far: one per `number % prime` the original would evaluate
    /// (the `number < 2*prime` shortcut comparisons are not counted).
    pub fn tests_done(&self) -> u64 {
        self.tests_done
    }

    /// The original's `cur_count`: 1 plus the relatively prime numbers seen so far.
    pub fn cur_count(&self) -> u64 {
        self.cur_count
    }

    /// Whether this stage has reached the point where the original spawns its child.
    pub fn has_spawned(&self) -> bool {
        self.cur_count > self.capacity
    }

    /// Whether the square-root cutoff is active (numbers are forwarded untested).
    pub fn skips_tests(&self) -> bool {
        self.skip_tests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stage_of_size_three() {
        let mut s = StageState::new(2, 3);
        assert_eq!(s.offer(3), Verdict::Keep); // 3 < 4: relatively prime, untested
        assert_eq!(s.tests_done(), 0);
        assert_eq!(s.offer(4), Verdict::Drop);
        assert_eq!(s.offer(5), Verdict::Keep);
        assert_eq!(s.offer(6), Verdict::Drop);
        assert_eq!(s.offer(7), Verdict::SpawnWith);
        assert!(s.has_spawned());
        assert_eq!(s.offer(9), Verdict::Drop);
        assert_eq!(s.offer(11), Verdict::Forward);
        assert_eq!(s.offer(25), Verdict::Drop);
        assert_eq!(s.offer(49), Verdict::Forward); // not this stage's business
        assert_eq!(s.primes(), vec![2, 3, 5]);
        assert_eq!(s.primes_held(), 3);
        assert_eq!(s.first_prime(), 2);
        assert_eq!(s.cur_count(), 6);
    }

    #[test]
    fn stage_size_one_spawns_on_first_relative_prime() {
        let mut s = StageState::new(2, 1);
        assert_eq!(s.offer(3), Verdict::SpawnWith);
        assert_eq!(s.offer(4), Verdict::Drop);
        assert_eq!(s.offer(5), Verdict::Forward);
        assert_eq!(s.primes(), vec![2]);
    }

    #[test]
    fn matches_the_original_predicate_and_test_count() {
        // A stage that is not prime-only, to exercise the predicate beyond real inputs.
        let primes = [3u64, 5, 7, 11, 13];
        let mut s = StageState::new(3, primes.len());
        for &p in &primes[1..] {
            assert_eq!(s.offer(p), Verdict::Keep);
        }
        let before = s.tests_done();
        let mut expected_tests = 0;
        for n in 0..5_000u64 {
            let (rel, tests) = crate::prime_scan::tests::original(n, &primes);
            expected_tests += tests;
            assert_eq!(s.offer(n).forwards(), rel, "n = {n}");
        }
        assert_eq!(s.tests_done() - before, expected_tests);
    }

    #[test]
    fn shortcut_does_not_overflow_near_u64_max() {
        let big = u64::MAX - 58; // 2^64 - 59 is prime; 2p overflows u64
        let mut s = StageState::new(big, 2);
        assert_eq!(s.offer(u64::MAX), Verdict::Keep);
        assert_eq!(s.tests_done(), 0);
    }

    #[test]
    fn sqrt_cutoff_only_for_large_first_primes() {
        assert!(!StageState::new(7, 3).with_sqrt_cutoff(49).skips_tests());
        assert!(StageState::new(11, 3).with_sqrt_cutoff(100).skips_tests());
        assert!(!StageState::new(2, 3).with_sqrt_cutoff(u64::MAX).skips_tests());
        let mut s = StageState::new(11, 3).with_sqrt_cutoff(100);
        assert_eq!(s.offer(13), Verdict::Keep);
        assert_eq!(s.offer(15), Verdict::Keep); // untested: the caller guarantees primes here
        assert_eq!(s.offer(17), Verdict::SpawnWith);
        assert_eq!(s.offer(19), Verdict::Forward);
        assert_eq!(s.tests_done(), 0);
    }

    #[test]
    fn zero_stage_size_only_filters() {
        let mut s = StageState::new(2, 0);
        assert_eq!(s.offer(3), Verdict::Forward);
        assert_eq!(s.offer(4), Verdict::Drop);
        assert_eq!(s.primes(), vec![2]);
    }
}
