//! Cost of the process runtime: starting and joining stages.
//!
//! Group `runtime`:
//! - `spawn_join`: the root spawns one stage whose entry returns `Ok(0)` and joins it (one
//!   criterion iteration = one stage: spawn request → fork server → fork → run → exit → join);
//! - `chain/<K>` for K = 10, 100, 1000: a chain of K stages, each spawned by the one before,
//!   passing a token through an SPSC queue of capacity 1 and returning the token that comes
//!   back from the end (one iteration = one whole chain, checked to return K).
//!
//! Peer: `fork_waitpid`, a bare `fork` of the bench process whose child calls `_exit(0)` at
//! once, reaped by `waitpid`: the floor under `spawn_join`, which adds the spawn request, the
//! fork server's wake-up, the stage table and the join's futex to a fork and an exit.
//!
//! A run is started once per benchmark (the bench process is single-threaded then) and reused
//! across iterations; `finish` is called at the end. A run's stage table is never recycled
//! (`runtime::MAX_STAGES` ids per run), so when the ids left cannot cover a batch the run is
//! finished and a new one started, outside the timed region. Each chain link removes its input
//! queue's name as soon as it has attached, so a long benchmark does not fill `/dev/shm` with the
//! queues the run would otherwise only remove at `finish`.
//!
//! `SHMPIPE_BENCH_QUICK=1` keeps every K (a chain of 1000 takes well under a second).

mod common;

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use criterion::{BenchmarkId, Criterion, SamplingMode};
use runtime::{Entry, QueueName, Run, RunHandle, Runtime, StageResult};
use shm_queue::{Queue, QueueOptions, Spsc};

/// Entry of `spawn_join`: does nothing.
fn noop(_run: &RunHandle, _: u64) -> StageResult {
    Ok(0)
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct LinkArgs {
    input: QueueName,
    next: Entry<LinkArgs>,
    remaining: u32,
}

/// Reads a token, passes token + 1 to a stage it spawns (while `remaining` > 0), returns the
/// token that comes back from the end of the chain.
fn chain_link(run: &RunHandle, args: LinkArgs) -> StageResult {
    let input = Queue::<u64, Spsc>::open(args.input.as_str())?;
    let mut rx = input.consumer()?;
    // Attached: the name is no longer needed (the mapping stays).
    shm_queue::unlink(args.input.as_str())?;
    let token = rx.pop()?;
    if args.remaining == 0 {
        return Ok(token);
    }
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(1))?;
    let child = run.spawn(args.next, &LinkArgs { input: name, next: args.next, remaining: args.remaining - 1 })?;
    queue.producer()?.push(token + 1)?;
    Ok(child.join()?.result)
}

/// A run with its entries, started on first use and replaced by a fresh one when its stage ids
/// run out.
#[derive(Default)]
struct Bench {
    run: Option<(Run, Entry<u64>, Entry<LinkArgs>)>,
    /// Stage ids the current run has handed out.
    used: u64,
}

/// Stage ids a run can hand out (id 0 is the root).
const STAGES_PER_RUN: u64 = runtime::MAX_STAGES as u64 - 1;

impl Bench {
    /// The run (and its `noop` and `chain_link` entries), started or replaced first if it has
    /// fewer than `stages` ids left.
    fn run_for(&mut self, stages: u64) -> &(Run, Entry<u64>, Entry<LinkArgs>) {
        assert!(stages <= STAGES_PER_RUN, "{stages} stages do not fit in one run");
        if self.run.is_some() && self.used + stages > STAGES_PER_RUN {
            self.finish();
        }
        if self.run.is_none() {
            // A run must start from a single-threaded process: its fork server is a fork of it.
            common::assert_single_threaded();
            let mut builder = Runtime::builder();
            let noop = builder.register("noop", noop);
            let link = builder.register("chain-link", chain_link);
            let run = builder.start().unwrap_or_else(|e| panic!("starting a run: {e}"));
            self.run = Some((run, noop, link));
            self.used = 0;
        }
        self.used += stages;
        self.run.as_ref().expect("started above")
    }

    /// Finishes the current run, if any.
    fn finish(&mut self) {
        if let Some((run, _, _)) = self.run.take() {
            run.finish().unwrap_or_else(|e| panic!("finishing the run: {e}"));
        }
    }

    /// `iters` spawn + join of a stage that returns at once, timed without run changes.
    fn spawn_join(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let batch = left.min(STAGES_PER_RUN);
            let (run, entry, _) = self.run_for(batch);
            let start = Instant::now();
            for i in 0..batch {
                let stage = run.spawn(*entry, &i).unwrap_or_else(|e| panic!("spawn: {e}"));
                stage.join().unwrap_or_else(|e| panic!("join: {e}"));
            }
            total += start.elapsed();
            left -= batch;
        }
        total
    }

    /// A chain of `k` stages, each spawned by the one before.
    fn chain(&mut self, k: u32) -> Duration {
        let (run, _, entry) = self.run_for(u64::from(k));
        let start = Instant::now();
        let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(1)).unwrap_or_else(|e| panic!("{e}"));
        let first = run
            .spawn(*entry, &LinkArgs { input: name, next: *entry, remaining: k - 1 })
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        queue.producer().expect("attach the token's producer").push(1).expect("push the token");
        let result = first.join().unwrap_or_else(|e| panic!("join: {e}")).result;
        let elapsed = start.elapsed();
        assert_eq!(result, u64::from(k), "the token went through {k} stages");
        elapsed
    }
}

/// `iters` forks of this process, each child exiting at once, each reaped before the next.
fn fork_waitpid(iters: u64) -> Duration {
    common::assert_single_threaded();
    let start = Instant::now();
    for _ in 0..iters {
        // SAFETY: this process is single-threaded (checked above); the child only calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: ends the child at once, running nothing of the parent's state.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid out-pointer; `pid` is our unreaped child.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            if rc == pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::EINTR), "waitpid({pid}) failed: {err}");
        }
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the forked child failed");
    }
    start.elapsed()
}

fn runtime_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("runtime");
    // First, before a run makes this process a subreaper with a fork server for a child.
    group.bench_function("fork_waitpid", |b| b.iter_custom(fork_waitpid));
    let mut bench = Bench::default();
    group.bench_function("spawn_join", |b| b.iter_custom(|iters| bench.spawn_join(iters)));
    bench.finish();
    // A chain of 1000 takes a good fraction of a second: few samples, each of a few chains.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for k in [10u32, 100, 1000] {
        group.bench_with_input(BenchmarkId::new("chain", k), &k, |b, &k| {
            b.iter_custom(|iters| (0..iters).map(|_| bench.chain(k)).sum())
        });
        // One run per benchmark.
        bench.finish();
    }
    group.finish();
}

fn main() {
    common::run(&[runtime_benches]);
}
