//! The whole pipeline run in one process, without queues: the baseline and the oracle.
//!
//! Every number walks the chain of [`StageState`]s in order, exactly as it would flow through
//! the queues of the multi-process pipeline. Because each queue is FIFO and every stage handles
//! its input in order, the pipeline's sink sees the same sequence, every stage ends with the
//! same primes, and the same divisibility tests are done — whatever the scheduling. So this
//! mode gives both a timing baseline and the exact expected result of a pipeline run.
//!
//! [`run_stage_major`] does the same in another order: a block of numbers through one stage,
//! then its survivors through the next. Each stage still sees the same numbers in the same
//! order, so everything comes out the same, but one stage's primes stay in the L1 cache for a
//! whole block, as they do in a pipeline stage, where the walk above streams every stage's
//! primes for every number. It is the benchmarks' single-process peer for the pipeline.

use std::convert::Infallible;

use crate::prime_scan::with_wide_scan;
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
    let Ok(result) = run_sequential_with(max_number, stage_size, sqrt_cutoff, |_| Ok::<(), Infallible>(()));
    result
}

/// [`run_sequential`], handing each prime to `on_prime` as it reaches the sink (for output
/// and progress as the run goes, as the pipeline's root has them). The first error ends the
/// run and is returned.
///
/// ```
/// let mut seen = Vec::new();
/// let result = sieve::sequential::run_sequential_with(30, 3, false, |p| {
///     seen.push(p);
///     if p < 20 { Ok(()) } else { Err(p) }
/// });
/// assert_eq!(result, Err(23));
/// assert_eq!(seen, [2, 3, 5, 7, 11, 13, 17, 19, 23]);
/// ```
pub fn run_sequential_with<E>(
    max_number: u64,
    stage_size: usize,
    sqrt_cutoff: bool,
    mut on_prime: impl FnMut(u64) -> Result<(), E>,
) -> Result<SieveResult, E> {
    // Not through `with_wide_scan!`: this walk, one number through stage after stage, measured
    // ~20 % slower with the scan inlined into it (N=10^6: 874 → 1,091 ms), where the
    // block-by-block loops below and in the pipeline's stages gain 5-7 %.
    let new_stage = stage_maker(max_number, stage_size, sqrt_cutoff);
    let mut stages = vec![new_stage(2)];
    let mut primes = vec![2];
    on_prime(2)?;

    // `3..=max_number` is empty for max_number < 3, as `range(3, limit + 1)` is in Python.
    for n in 3..=max_number {
        let mut i = 0;
        loop {
            let Some(stage) = stages.get_mut(i) else {
                // Past the last stage: the number reached the sink.
                primes.push(n);
                on_prime(n)?;
                break;
            };
            match stage.offer(n) {
                Verdict::Drop => break,
                Verdict::Forward | Verdict::Keep => i += 1,
                Verdict::SpawnWith => {
                    // The original puts n on its old output (the sink: a spawning stage is the
                    // last one) before splicing in the new stage, so n skips the new stage.
                    primes.push(n);
                    on_prime(n)?;
                    stages.push(new_stage(n));
                    break;
                }
            }
        }
    }
    Ok(finish(primes, &stages))
}

/// Numbers per block in [`run_stage_major`]: 8 KB of them, well inside L1 beside a stage's
/// primes (1,024 and 8,192 measured alike at N=10^6, S=100).
pub const STAGE_MAJOR_BLOCK: usize = 1024;

/// [`run_sequential`]'s result, computed a block of `block` numbers at a time, each block
/// through one stage after another (`block` ≥ 1; see the module docs). The same result,
/// divisibility tests included.
pub fn run_stage_major(max_number: u64, stage_size: usize, sqrt_cutoff: bool, block: usize) -> SieveResult {
    with_wide_scan!(by_stage(max_number: u64, stage_size: usize, sqrt_cutoff: bool, block: usize) -> SieveResult)
}

#[inline(always)]
fn by_stage(max_number: u64, stage_size: usize, sqrt_cutoff: bool, block: usize) -> SieveResult {
    let new_stage = stage_maker(max_number, stage_size, sqrt_cutoff);
    let mut stages = vec![new_stage(2)];
    let mut primes = vec![2];
    let block = block.max(1) as u64;
    let (mut numbers, mut survivors) = (Vec::new(), Vec::new());
    let mut first = 3u64;
    while first <= max_number {
        let last = first.saturating_add(block - 1).min(max_number);
        numbers.clear();
        numbers.extend(first..=last);
        let mut i = 0;
        while !numbers.is_empty() {
            // The last stage forwards to the sink until it spawns, then to the stage it spawned.
            let mut to_sink = i + 1 == stages.len();
            let mut spawned = None;
            survivors.clear();
            for &n in &numbers {
                match stages[i].offer(n) {
                    Verdict::Drop => {}
                    Verdict::Forward | Verdict::Keep if to_sink => primes.push(n),
                    Verdict::Forward | Verdict::Keep => survivors.push(n),
                    Verdict::SpawnWith => {
                        primes.push(n);
                        spawned = Some(n);
                        to_sink = false;
                    }
                }
            }
            if let Some(n) = spawned {
                stages.push(new_stage(n));
            }
            std::mem::swap(&mut numbers, &mut survivors);
            i += 1;
        }
        if last == max_number {
            break; // `last + 1` would overflow at u64::MAX
        }
        first = last + 1;
    }
    finish(primes, &stages)
}

/// How both orders make a stage: holding `first_prime`, with the cutoff if asked for.
fn stage_maker(max_number: u64, stage_size: usize, sqrt_cutoff: bool) -> impl Fn(u64) -> StageState {
    move |first_prime| {
        let stage = StageState::new(first_prime, stage_size);
        if sqrt_cutoff {
            stage.with_sqrt_cutoff(max_number)
        } else {
            stage
        }
    }
}

fn finish(primes: Vec<u64>, stages: &[StageState]) -> SieveResult {
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
    fn stage_major_order_gives_the_same_result_and_tests() {
        let cases = [(0u64, 3usize), (2, 3), (3, 3), (100, 3), (3000, 1), (3000, 7), (10_000, 10), (100_000, 100)];
        for (n, s) in cases {
            for sqrt_cutoff in [false, true] {
                let walk = run_sequential(n, s, sqrt_cutoff);
                for block in [1, 2, 7, 100, STAGE_MAJOR_BLOCK, 1 << 20] {
                    let by_stage = run_stage_major(n, s, sqrt_cutoff, block);
                    assert_eq!(by_stage, walk, "N={n} S={s} cutoff={sqrt_cutoff} block={block}");
                }
            }
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
