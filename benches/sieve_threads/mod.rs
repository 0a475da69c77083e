//! The dynamic prime pipeline with threads and crossbeam bounded channels: the peer of
//! `sieve::pipeline` (processes and shm-queue rings) in the sieve benchmarks.
//!
//! Same shape and same per-number decisions as a pipeline stage: a source thread feeds `3..=N`, a
//! stage thread per stage starts with its first prime, forwards relatively prime numbers to its
//! output (the sink until it is full), and when full starts a new stage thread with the next
//! relatively prime number and hands it the sink's sender. End of stream is the channel closing.
//! The calling thread is the sink. Every stage joins the stage it started, and the caller joins
//! the source and stage 0, so when [`run_threads`] returns no thread of it is left (the sieve
//! benchmarks fork processes afterwards).
//!
//! A stage decides with [`StageState`], the pipeline's own code and its modular-inverse test
//! ([`Divisibility::Inverse`]: the like-for-like peer), or with the original's
//! `is_relatively_prime` and `%` ([`Divisibility::Modulo`]). The issue set its ratio aims
//! against a threads-and-crossbeam version it had measured (2.6 s at N = 10⁶, S = 100, chunks)
//! and names the modular-inverse test as part of its prototype's speed, not of that version's:
//! `Modulo` is our reconstruction of such a version (1.7 s here), not the code.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use sieve::stage_logic::{StageState, Verdict};

/// Items per chunk in [`Transfer::Chunked`] (what the source sends, and the most a stage
/// forwards at once).
pub const CHUNK: usize = 1024;

/// Stack of a stage thread: a stage needs little, and N = 10⁶ with S = 100 starts 785 of them.
const STACK: usize = 256 * 1024;

/// What goes through a channel.
#[derive(Debug, Clone, Copy)]
pub enum Transfer {
    /// One `u64` per send.
    PerItem,
    /// `Vec<u64>` of up to [`CHUNK`] numbers per send.
    Chunked,
}

/// How a stage tests divisibility.
#[derive(Debug, Clone, Copy)]
pub enum Divisibility {
    /// [`StageState`]: a precomputed modular inverse per prime, eight primes at a time where
    /// the CPU can (what the process pipeline and the sequential mode run).
    Inverse,
    /// The original's loop, `n < 2p` then `n % p == 0`, one prime at a time.
    Modulo,
}

/// A stage's decision for each number it receives.
trait Decide: Send + 'static {
    /// A stage holding `first_prime`, keeping up to `stage_size` primes.
    fn new(first_prime: u64, stage_size: usize) -> Self;
    /// What the stage does with `n`.
    fn offer(&mut self, n: u64) -> Verdict;
}

impl Decide for StageState {
    fn new(first_prime: u64, stage_size: usize) -> Self {
        StageState::new(first_prime, stage_size)
    }

    #[inline]
    fn offer(&mut self, n: u64) -> Verdict {
        StageState::offer(self, n)
    }
}

/// The original stage's primes, counter and `is_relatively_prime`, as written there.
struct ModuloStage {
    primes: Vec<u64>,
    stage_size: usize,
    cur_count: usize,
}

impl Decide for ModuloStage {
    fn new(first_prime: u64, stage_size: usize) -> Self {
        Self { primes: vec![first_prime], stage_size, cur_count: 1 }
    }

    fn offer(&mut self, n: u64) -> Verdict {
        for &p in &self.primes {
            // `n < 2p` as `n / 2 < p`: the same for integers, and no overflow.
            if n / 2 < p {
                break;
            }
            // The original's `%`, literally (`is_multiple_of` adds a test for p = 0).
            #[allow(clippy::manual_is_multiple_of)]
            if n % p == 0 {
                return Verdict::Drop;
            }
        }
        let verdict = match self.cur_count.cmp(&self.stage_size) {
            std::cmp::Ordering::Less => {
                self.primes.push(n);
                Verdict::Keep
            }
            std::cmp::Ordering::Equal => Verdict::SpawnWith,
            std::cmp::Ordering::Greater => Verdict::Forward,
        };
        self.cur_count += 1;
        verdict
    }
}

/// Runs the pipeline for `3..=max_number` with `stage_size` primes per stage and channels of
/// `depth` messages; returns how many primes the sink received (2 included).
///
/// # Panics
/// If a thread cannot be started or a stage panics.
pub fn run_threads(
    max_number: u64,
    stage_size: usize,
    depth: usize,
    transfer: Transfer,
    divisibility: Divisibility,
) -> u64 {
    match divisibility {
        Divisibility::Inverse => run::<StageState>(max_number, stage_size, depth, transfer),
        Divisibility::Modulo => run::<ModuloStage>(max_number, stage_size, depth, transfer),
    }
}

fn run<D: Decide>(max_number: u64, stage_size: usize, depth: usize, transfer: Transfer) -> u64 {
    match transfer {
        Transfer::PerItem => {
            let (numbers_tx, numbers_rx) = bounded::<u64>(depth);
            let (sink_tx, sink_rx) = bounded::<u64>(depth);
            let source = spawn("sieve-source", move || {
                for n in 3..=max_number {
                    numbers_tx.send(n).expect("stage 0 outlives the source");
                }
            });
            let first = spawn("sieve-stage", move || stage_items::<D>(2, stage_size, depth, numbers_rx, sink_tx));
            // 2 is prime: the root "primes" the sink with it.
            let primes = 1 + sink_rx.iter().count() as u64;
            join(source, first);
            primes
        }
        Transfer::Chunked => {
            let (numbers_tx, numbers_rx) = bounded::<Vec<u64>>(depth);
            let (sink_tx, sink_rx) = bounded::<Vec<u64>>(depth);
            let source = spawn("sieve-source", move || {
                let mut next = 3u64;
                while next <= max_number {
                    let last = max_number.min(next.saturating_add(CHUNK as u64 - 1));
                    numbers_tx.send((next..=last).collect()).expect("stage 0 outlives the source");
                    if last == max_number {
                        break;
                    }
                    next = last + 1;
                }
            });
            let first = spawn("sieve-stage", move || stage_chunks::<D>(2, stage_size, depth, numbers_rx, sink_tx));
            let primes = 1 + sink_rx.iter().map(|chunk| chunk.len() as u64).sum::<u64>();
            join(source, first);
            primes
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .stack_size(STACK)
        .spawn(f)
        .unwrap_or_else(|e| panic!("starting a {name} thread: {e}"))
}

fn join(source: JoinHandle<()>, first: JoinHandle<()>) {
    source.join().expect("the source thread panicked");
    first.join().expect("a stage thread panicked");
}

/// One stage, one number per message.
fn stage_items<D: Decide>(
    first_prime: u64,
    stage_size: usize,
    depth: usize,
    input: Receiver<u64>,
    mut out: Sender<u64>,
) {
    let mut state = D::new(first_prime, stage_size);
    let mut child = None;
    for n in input.iter() {
        match state.offer(n) {
            Verdict::Drop => {}
            Verdict::Forward | Verdict::Keep => out.send(n).expect("downstream outlives us"),
            Verdict::SpawnWith => {
                // n goes to the sink first, then a new stage is spliced in before the sink.
                out.send(n).expect("downstream outlives us");
                let (tx, rx) = bounded(depth);
                let sink = std::mem::replace(&mut out, tx);
                child = Some(spawn("sieve-stage", move || stage_items::<D>(n, stage_size, depth, rx, sink)));
            }
        }
    }
    drop(out); // end of stream for downstream
    if let Some(child) = child {
        child.join().expect("a stage thread panicked");
    }
}

/// One stage, chunks of numbers per message.
fn stage_chunks<D: Decide>(
    first_prime: u64,
    stage_size: usize,
    depth: usize,
    input: Receiver<Vec<u64>>,
    mut out: Sender<Vec<u64>>,
) {
    let mut state = D::new(first_prime, stage_size);
    let mut child = None;
    let mut forward = Vec::with_capacity(CHUNK);
    for chunk in input.iter() {
        for n in chunk {
            match state.offer(n) {
                Verdict::Drop => {}
                Verdict::Forward | Verdict::Keep => forward.push(n),
                Verdict::SpawnWith => {
                    forward.push(n);
                    out.send(std::mem::replace(&mut forward, Vec::with_capacity(CHUNK)))
                        .expect("downstream outlives us");
                    let (tx, rx) = bounded(depth);
                    let sink = std::mem::replace(&mut out, tx);
                    child = Some(spawn("sieve-stage", move || stage_chunks::<D>(n, stage_size, depth, rx, sink)));
                }
            }
        }
        if !forward.is_empty() {
            out.send(std::mem::replace(&mut forward, Vec::with_capacity(CHUNK))).expect("downstream outlives us");
        }
    }
    drop(out);
    if let Some(child) = child {
        child.join().expect("a stage thread panicked");
    }
}
