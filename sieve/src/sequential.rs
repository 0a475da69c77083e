//! The whole pipeline run in one process, without queues: the baseline and the oracle.
//!
//! Every number walks the chain of [`StageState`]s in order, exactly as it would flow through
//! the queues of the multi-process pipeline. Because each queue is FIFO and every stage handles
//! its input in order, the pipeline's sink sees the same sequence, every stage ends with the
//! same primes, and the same divisibility tests are done — whatever the scheduling. So this
//! mode gives both a timing baseline and the exact expected result of a pipeline run.

use crate::stage_logic::{StageState, Verdict};

/// The outcome of a sieve run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SieveResult {
    /// What the sink (main) receives, in order, starting with the `2` that main puts first.
    pub primes: Vec<u64>,
    /// Each stage's primes, stage 0 (the one started with 2) first.
    pub stages: Vec<Vec<u64>>,
    /// Total divisibility tests done by all stages.
    pub tests_done: u64,
    /// Divisibility tests done by each stage, stage 0 first.
    pub stage_tests: Vec<u64>,
}

impl SieveResult {
    /// Number of primes the sink received.
    pub fn count(&self) -> usize {
        self.primes.len()
    }

    /// Sum of the primes the sink received (u128: cannot overflow for any `Vec` of `u64`).
    pub fn sum(&self) -> u128 {
        self.primes.iter().map(|&p| u128::from(p)).sum()
    }

    /// The largest prime received (the last one, as they arrive in increasing order).
    pub fn largest(&self) -> Option<u64> {
        self.primes.iter().copied().max()
    }
}

/// Runs the original pipeline's algorithm for `3..=max_number` in this process.
///
/// Main puts `2` on the sink first; stage 0 starts holding 2; the source feeds `3..=max_number`
/// (nothing when `max_number < 3`). With `sqrt_cutoff`, every stage is built with
/// [`StageState::with_sqrt_cutoff`]: same output and stages, fewer tests.
pub fn run_sequential(max_number: u64, stage_size: usize, sqrt_cutoff: bool) -> SieveResult {
    let new_stage = |first_prime: u64| {
        let stage = StageState::new(first_prime, stage_size);
        if sqrt_cutoff {
            stage.with_sqrt_cutoff(max_number)
        } else {
            stage
        }
    };
    let mut stages = vec![new_stage(2)];
    let mut primes = vec![2];

    // `3..=max_number` is empty for max_number < 3, as `range(3, limit + 1)` is in Python.
    for n in 3..=max_number {
        let mut i = 0;
        loop {
            let Some(stage) = stages.get_mut(i) else {
                // Past the last stage: the number reached the sink.
                primes.push(n);
                break;
            };
            match stage.offer(n) {
                Verdict::Drop => break,
                Verdict::Forward | Verdict::Keep => i += 1,
                Verdict::SpawnWith => {
                    // The original puts n on its old output (the sink: a spawning stage is the
                    // last one) before splicing in the new stage, so n skips the new stage.
                    primes.push(n);
                    stages.push(new_stage(n));
                    break;
                }
            }
        }
    }

    SieveResult {
        primes,
        tests_done: stages.iter().map(StageState::tests_done).sum(),
        stage_tests: stages.iter().map(StageState::tests_done).collect(),
        stages: stages.iter().map(StageState::primes).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::primes_up_to;

    #[test]
    fn n_100_stage_size_3() {
        let r = run_sequential(100, 3, false);
        assert_eq!(r.primes, primes_up_to(100));
        assert_eq!((r.count(), r.sum(), r.largest()), (25, 1060, Some(97)));
        let expected: Vec<Vec<u64>> = vec![
            vec![2, 3, 5],
            vec![7, 11, 13],
            vec![17, 19, 23],
            vec![29, 31, 37],
            vec![41, 43, 47],
            vec![53, 59, 61],
            vec![67, 71, 73],
            vec![79, 83, 89],
            vec![97],
        ];
        assert_eq!(r.stages, expected);
        // From a Python re-implementation of the original counting `number % prime` calls.
        assert_eq!(r.tests_done, 293);
    }

    #[test]
    fn tiny_limits() {
        for n in [0, 1, 2] {
            let r = run_sequential(n, 3, false);
            assert_eq!(r.primes, vec![2]);
            assert_eq!(r.stages, vec![vec![2]]);
            assert_eq!(r.tests_done, 0);
        }
        let r = run_sequential(3, 3, false);
        assert_eq!(r.primes, vec![2, 3]);
        assert_eq!(r.stages, vec![vec![2, 3]]);
    }

    #[test]
    fn counts_from_the_python_model() {
        // (N, S, count, sum, stages, tests) from a Python re-implementation of the original.
        let cases = [
            (10_000u64, 10usize, 1229usize, 5_736_396u128, 123usize, 436_328u64),
            (130, 2, 31, 1720, 16, 429),
            (100_000, 100, 9592, 454_396_537, 96, 25_042_950),
        ];
        for (n, s, count, sum, nstages, tests) in cases {
            let r = run_sequential(n, s, false);
            assert_eq!((r.count(), r.sum(), r.stages.len(), r.tests_done), (count, sum, nstages, tests), "N={n} S={s}");
        }
    }

    #[test]
    fn output_is_exactly_the_primes_for_many_sizes() {
        let reference = primes_up_to(3000);
        for s in 1..=40 {
            let r = run_sequential(3000, s, false);
            assert_eq!(r.primes, reference, "S = {s}");
            // Every prime is held by exactly one stage, in order.
            let held: Vec<u64> = r.stages.iter().flatten().copied().collect();
            assert_eq!(held, reference, "S = {s}");
            assert!(r.stages.iter().all(|st| st.len() <= s));
        }
    }

    #[test]
    fn sqrt_cutoff_changes_only_the_work() {
        for (n, s) in [(100u64, 3usize), (10_000, 10), (20_000, 1), (5000, 100)] {
            let full = run_sequential(n, s, false);
            let cut = run_sequential(n, s, true);
            assert_eq!(full.primes, cut.primes);
            assert_eq!(full.stages, cut.stages);
            assert!(cut.tests_done <= full.tests_done);
        }
        assert!(run_sequential(10_000, 10, true).tests_done < 436_328);
    }
}
