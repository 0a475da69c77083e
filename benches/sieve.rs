//! The prime sieve, end to end, in each execution mode.
//!
//! One group per (N, S): `sieve/N=<N>_S=<S>` for (10⁴, 100), (10⁵, 100), (10⁶, 100) and
//! (10⁶, 1000), the original algorithm (no square-root cutoff). One criterion iteration = one
//! whole run, checked to find π(N) primes:
//! - `pipeline/<depth>`: `sieve::pipeline::run_pipeline` (a process per stage on the shmpipe
//!   runtime, queues of `depth` items, depths 10 and 1024), a no-op `on_prime`; includes
//!   starting and finishing the run, as the `sieve` binary does;
//! - peers: `threads_item/<depth>` and `threads_chunk/<depth>`: the same dynamic pipeline with
//!   a thread per stage and crossbeam bounded channels of `depth` messages, sending one number
//!   per message or `Vec`s of up to 1024 (see `sieve_threads`), deciding with the pipeline's own
//!   code; `threads_chunk_modulo/1024`: the chunked peer with the original's `%` test, the kind
//!   of version the issue measured and set its aims against;
//! - `sequential`: `sieve::sequential::run_sequential`, every stage in one thread, no queues,
//!   each number through the stages in turn (the sieve's `--mode sequential`);
//! - `stage_major`: `sieve::sequential::run_stage_major`, the same run in one thread a block of
//!   1,024 numbers at a time through one stage after another: the same tests, with a stage's
//!   primes kept in L1 as a pipeline stage keeps them (what one core does at its best);
//! - `reference`: `sieve::reference::count_primes_up_to`, a segmented sieve of Eratosthenes
//!   (what the problem costs with a good algorithm).
//!
//! The pipeline forks, so it must run while this process has one thread: the threads peer joins
//! every thread before it returns, and criterion runs benchmarks one after the other.
//!
//! Runs take milliseconds to seconds, so every group samples flat, with 20 samples (10 at N =
//! 10⁶, where a run takes seconds).
//! Depth 10 at N = 10⁶, S = 100 is slow for the pipeline and the per-item threads (20-30 s a
//! run on 2 cores: 785 stages wake each other every few items). `SHMPIPE_BENCH_QUICK=1` drops
//! (10⁶, 1000) and depth 10 at N = 10⁶.

mod common;
mod sieve_threads;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use sieve::pipeline::{run_pipeline, PipelineConfig};
use sieve_threads::{run_threads, Divisibility, Transfer};

/// Queue depths (channel capacities for the threads peer).
const DEPTHS: [usize; 3] = [10, 1024, 8192];

/// Runs the process pipeline; returns the number of primes the root received.
fn pipeline(max_number: u64, stage_size: usize, queue_depth: usize) -> u64 {
    let config = PipelineConfig { max_number, stage_size, queue_depth, sqrt_cutoff: false };
    let mut primes = 0u64;
    run_pipeline(&config, |p| {
        black_box(p);
        primes += 1;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("pipeline N={max_number} S={stage_size} depth={queue_depth}: {e}"));
    primes
}

fn configs() -> Vec<(u64, usize)> {
    let mut configs = vec![(10_000, 100), (100_000, 100), (1_000_000, 100)];
    if !common::quick() {
        configs.push((1_000_000, 1000));
    }
    configs
}

/// N for group names: `1e6` for a power of ten.
fn pretty(n: u64) -> String {
    let (mut m, mut k) = (n, 0);
    while m >= 10 && m % 10 == 0 {
        m /= 10;
        k += 1;
    }
    if m == 1 && k > 0 {
        format!("1e{k}")
    } else {
        n.to_string()
    }
}

/// Which benchmarks a pass over the configurations runs.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    /// The process pipeline.
    Processes,
    /// Everything that runs in this process: threads peers, sequential, reference.
    InProcess,
}

/// The process pipelines of every configuration run first, while this process is small: the
/// fork server starts as a copy of it, and a fork costs in proportion to the copied mappings.
/// After the threads peers have run, glibc's per-thread arenas leave ~260 mappings here instead
/// of ~40, and the same pipeline measured 0.86-0.97 s instead of 0.56 s at N = 10⁶.
fn sieve_benches(c: &mut Criterion) {
    for pass in [Pass::Processes, Pass::InProcess] {
        for (n, s) in configs() {
            sieve_group(c, pass, n, s);
        }
    }
}

fn sieve_group(c: &mut Criterion, pass: Pass, n: u64, s: usize) {
    let expected = sieve::reference::count_primes_up_to(n);
    let mut group = c.benchmark_group(format!("sieve/N={}_S={s}", pretty(n)));
    let slow = n >= 1_000_000;
    // Every run takes milliseconds to seconds: flat sampling (criterion's default linear
    // sampling would run at least 5050 iterations for 100 samples). Group settings override
    // the command line, so quick keeps its 10 samples here.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(if slow || common::quick() { 10 } else { 20 });
    // Quick mode skips depth 10 at N = 10⁶: a run takes 20-30 s there (785 stages waking
    // each other every few items on 2 cores), more than the whole quick budget allows.
    let depths: Vec<usize> = DEPTHS.into_iter().filter(|&d| !(slow && d < 100 && common::quick())).collect();
    if pass == Pass::Processes {
        for &depth in &depths {
            group.bench_with_input(BenchmarkId::new("pipeline", depth), &depth, |b, &depth| {
                b.iter(|| assert_eq!(pipeline(n, s, depth), expected, "primes found by the pipeline"))
            });
        }
        group.finish();
        return;
    }
    for &depth in &depths {
        for (name, transfer) in [("threads_item", Transfer::PerItem), ("threads_chunk", Transfer::Chunked)] {
            group.bench_with_input(BenchmarkId::new(name, depth), &depth, |b, &depth| {
                let found = || run_threads(n, s, depth, transfer, Divisibility::Inverse);
                b.iter(|| assert_eq!(found(), expected, "primes found by {name}"))
            });
        }
    }
    group.bench_function(BenchmarkId::new("threads_chunk_modulo", 1024), |b| {
        b.iter(|| assert_eq!(run_threads(n, s, 1024, Transfer::Chunked, Divisibility::Modulo), expected))
    });
    group.bench_function("sequential", |b| {
        b.iter(|| assert_eq!(sieve::sequential::run_sequential(n, s, false).count() as u64, expected))
    });
    group.bench_function("stage_major", |b| {
        b.iter(|| {
            let result = sieve::sequential::run_stage_major(n, s, false, sieve::sequential::STAGE_MAJOR_BLOCK);
            assert_eq!(result.count() as u64, expected)
        })
    });
    group.bench_function("reference", |b| b.iter(|| sieve::reference::count_primes_up_to(black_box(n))));
    group.finish();
}

fn main() {
    common::run(&[sieve_benches]);
}
