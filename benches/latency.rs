//! Round-trip latency between two processes, and what a blocked consumer costs while idle.
//!
//! Group `latency/ping_pong` (one criterion iteration = one round trip; the benchmark process
//! pings, a forked child echoes; the child is forked once per batch and released through a
//! start gate, so the fork is not timed):
//! - `shm_spin`: two SPSC queues, both sides busy-looping on `try_push` / `try_pop` (after
//!   4096 failed tries a side yields its CPU between tries, so that on a loaded machine a round
//!   trip does not become a scheduler time slice);
//! - `shm_blocking`: the same with blocking `push` / `pop` (short adaptive spin, then a sleep in
//!   the shared futex); the futex waits per round trip seen are printed once per run;
//! - `futex_raw` (peer): one `AtomicU32` in a `MAP_SHARED | MAP_ANONYMOUS` page, turns passed by
//!   store + FUTEX_WAKE, waited for by FUTEX_WAIT (shared: no `FUTEX_PRIVATE_FLAG`), every time;
//! - `pipe` (peer): 8-byte write and read over two pipes.
//!
//! Group `latency/idle`, `consumer_cpu_per_10ms`: a forked consumer blocks in `pop` on an
//! empty queue for `iters` × 10 ms. The value given to criterion is the CPU time the consumer
//! used while blocked (`CLOCK_THREAD_CPUTIME_ID` around the `pop`), not wall-clock time:
//! criterion reports it as "time" per 10 ms of idling. Once per run, a 1 s idle period is also
//! measured and printed with `eprintln!` (criterion cannot report it): the consumer's CPU time
//! while blocked, its futex waits (the sleeper re-checks for dead peers every 100 ms) and the
//! whole child's rusage (from `wait4`, including fork and exit).

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{between, cpu_time, futex_wait, futex_wake, mono_ns, segment_name, thread_cpu_ns, Gate, Peers, Shared};
use criterion::{Criterion, SamplingMode};
use shm_queue::{PopError, PushError, Queue, QueueOptions, Spsc};

/// Slots of the ping-pong queues (one item is ever in flight).
const PING_CAPACITY: usize = 16;

/// How the shm ping-pong waits.
#[derive(Clone, Copy)]
enum Wait {
    Spin,
    Block,
}

/// Failed tries before a spinner starts yielding its CPU between tries.
const SPINS_BEFORE_YIELD: u32 = 1 << 12;

/// A busy-wait step: `spin_loop` hints, then `sched_yield` once `spins` is past the budget (with
/// more runnable processes than cores, a pure spinner could hold the core its peer needs for a
/// whole time slice; on idle cores the budget is never reached between two round trips).
#[inline]
fn backoff(spins: &mut u32) {
    if *spins < SPINS_BEFORE_YIELD {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn push_spin(tx: &mut shm_queue::Producer<u64, Spsc>, mut v: u64) {
    let mut spins = 0;
    loop {
        match tx.try_push(v) {
            Ok(()) => return,
            Err(PushError::Full(back)) => {
                v = back;
                backoff(&mut spins);
            }
            Err(e) => panic!("try_push failed: {e}"),
        }
    }
}

/// Pops spinning; `None` once the other side has gone.
fn pop_spin(rx: &mut shm_queue::Consumer<u64, Spsc>) -> Option<u64> {
    let mut spins = 0;
    loop {
        match rx.try_pop() {
            Ok(v) => return Some(v),
            Err(PopError::Empty) => backoff(&mut spins),
            Err(PopError::Disconnected) => return None,
            Err(e) => panic!("try_pop failed: {e}"),
        }
    }
}

/// `iters` round trips over two SPSC queues; returns the time and the futex waits of both
/// sides' consumers.
fn shm_ping_pong(iters: u64, wait: Wait) -> (Duration, u64) {
    let (ping_name, pong_name) = (segment_name(), segment_name());
    let ping = Queue::<u64, Spsc>::create_with(&ping_name, QueueOptions::new(PING_CAPACITY))
        .unwrap_or_else(|e| panic!("creating {ping_name}: {e}"));
    let pong = Queue::<u64, Spsc>::create_with(&pong_name, QueueOptions::new(PING_CAPACITY))
        .unwrap_or_else(|e| panic!("creating {pong_name}: {e}"));
    let mut tx = ping.producer().expect("attach the ping producer");
    let mut rx = pong.consumer().expect("attach the pong consumer");
    let gate = Shared::<Gate>::new();
    let mut peers = Peers::new();
    peers.spawn(|| {
        let mut rx = ping.consumer().expect("attach the ping consumer");
        let mut tx = pong.producer().expect("attach the pong producer");
        gate.arrive();
        match wait {
            Wait::Spin => {
                while let Some(v) = pop_spin(&mut rx) {
                    push_spin(&mut tx, v);
                }
            }
            Wait::Block => loop {
                match rx.pop() {
                    Ok(v) => tx.push(v).unwrap_or_else(|e| panic!("push failed: {e}")),
                    Err(PopError::Disconnected) => break,
                    Err(e) => panic!("pop failed: {e}"),
                }
            },
        }
    });
    let start = gate.open(1, &mut peers);
    for i in 0..iters {
        let back = match wait {
            Wait::Spin => {
                push_spin(&mut tx, i);
                pop_spin(&mut rx)
            }
            Wait::Block => {
                tx.push(i).unwrap_or_else(|e| panic!("push failed: {e}"));
                Some(rx.pop().unwrap_or_else(|e| panic!("pop failed: {e}")))
            }
        };
        assert_eq!(back, Some(i), "the echo carries the ping");
    }
    let end = mono_ns();
    drop(tx); // closes the ping queue: the child's pop sees Disconnected
    peers.wait();
    let waits = ping.stats().consumer.futex_waits + pong.stats().consumer.futex_waits;
    (between(start, end), waits)
}

/// Marks the end of the futex ping-pong (odd: the child's turn, so it looks).
const STOP: u32 = u32::MAX;

/// `iters` round trips passing turns in one shared word: odd values are the child's turn,
/// even ones the parent's. Every hand-over is a store, a FUTEX_WAKE, and a FUTEX_WAIT on the
/// other side.
fn futex_ping_pong(iters: u64) -> Duration {
    assert!(iters < u64::from(u32::MAX / 2), "turns are counted in a u32");
    let word = Shared::<AtomicU32>::new();
    let gate = Shared::<Gate>::new();
    let mut peers = Peers::new();
    peers.spawn(|| {
        gate.arrive();
        loop {
            let w = word.load(Ordering::Acquire);
            if w == STOP {
                break;
            }
            if w % 2 == 1 {
                word.store(w + 1, Ordering::Release);
                futex_wake(&word, 1);
            } else {
                futex_wait(&word, w, None);
            }
        }
    });
    let start = gate.open(1, &mut peers);
    for i in 0..iters as u32 {
        let ping = 2 * i + 1;
        word.store(ping, Ordering::Release);
        futex_wake(&word, 1);
        while word.load(Ordering::Acquire) == ping {
            futex_wait(&word, ping, None);
        }
    }
    let end = mono_ns();
    word.store(STOP, Ordering::Release);
    futex_wake(&word, 1);
    peers.wait();
    between(start, end)
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2 failed: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (r.into(), w.into())
}

/// Ends the pipe ping-pong (the child holds copies of every pipe end, so it would never see EOF).
const PIPE_STOP: u64 = u64::MAX;

/// `iters` round trips of 8 bytes over two pipes.
fn pipe_ping_pong(iters: u64) -> Duration {
    let (ping_rx, mut ping_tx) = pipe();
    let (mut pong_rx, pong_tx) = pipe();
    let gate = Shared::<Gate>::new();
    let mut peers = Peers::new();
    peers.spawn(|| {
        let (mut rx, mut tx) = (&ping_rx, &pong_tx);
        gate.arrive();
        let mut buf = [0u8; 8];
        loop {
            rx.read_exact(&mut buf).expect("read the ping");
            if u64::from_ne_bytes(buf) == PIPE_STOP {
                break;
            }
            tx.write_all(&buf).expect("write the echo");
        }
    });
    let start = gate.open(1, &mut peers);
    let mut buf = [0u8; 8];
    for i in 0..iters {
        ping_tx.write_all(&i.to_ne_bytes()).expect("write the ping");
        pong_rx.read_exact(&mut buf).expect("read the echo");
        assert_eq!(u64::from_ne_bytes(buf), i, "the echo carries the ping");
    }
    let end = mono_ns();
    ping_tx.write_all(&PIPE_STOP.to_ne_bytes()).expect("write the stop mark");
    peers.wait();
    between(start, end)
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency/ping_pong");
    group.bench_function("shm_spin", |b| b.iter_custom(|iters| shm_ping_pong(iters, Wait::Spin).0));
    let (trips, waits) = (Cell::new(0u64), Cell::new(0u64));
    group.bench_function("shm_blocking", |b| {
        b.iter_custom(|iters| {
            let (time, w) = shm_ping_pong(iters, Wait::Block);
            trips.set(trips.get() + iters);
            waits.set(waits.get() + w);
            time
        })
    });
    if trips.get() > 0 {
        eprintln!(
            "latency/ping_pong/shm_blocking: {:.3} futex waits per round trip ({} round trips)",
            waits.get() as f64 / trips.get() as f64,
            trips.get()
        );
    }
    group.bench_function("futex_raw", |b| b.iter_custom(futex_ping_pong));
    group.bench_function("pipe", |b| b.iter_custom(pipe_ping_pong));
    group.finish();
}

/// What one idle period cost the blocked consumer.
struct Idle {
    /// CPU time of the consumer while blocked in `pop`.
    blocked_cpu: Duration,
    /// Its FUTEX_WAIT calls.
    futex_waits: u64,
    /// The whole child process's rusage.
    usage: libc::rusage,
}

/// Forks a consumer that blocks in `pop` on an empty queue for `idle`, then closes the queue.
fn idle_consumer(idle: Duration) -> Idle {
    let name = segment_name();
    let queue = Queue::<u64, Spsc>::create(&name, 16).unwrap_or_else(|e| panic!("creating {name}: {e}"));
    let tx = queue.producer().expect("attach the producer");
    let gate = Shared::<Gate>::new();
    let mut peers = Peers::new();
    peers.spawn(|| {
        let mut rx = queue.consumer().expect("attach the consumer");
        gate.arrive();
        let before = thread_cpu_ns();
        match rx.pop() {
            Err(PopError::Disconnected) => {}
            other => panic!("expected Disconnected after the idle period, got {other:?}"),
        }
        let cpu = thread_cpu_ns() - before;
        gate.extra[0].store(cpu, Ordering::Release);
        gate.extra[1].store(rx.stats().consumer.futex_waits, Ordering::Release);
    });
    gate.open(1, &mut peers);
    std::thread::sleep(idle);
    drop(tx);
    let usage = peers.wait()[0];
    Idle {
        blocked_cpu: Duration::from_nanos(gate.extra[0].load(Ordering::Acquire)),
        futex_waits: gate.extra[1].load(Ordering::Acquire),
        usage,
    }
}

/// Idle time per criterion iteration.
const IDLE_STEP: Duration = Duration::from_millis(10);

fn idle(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency/idle");
    group.sampling_mode(SamplingMode::Flat);
    let printed = Cell::new(false);
    group.bench_function("consumer_cpu_per_10ms", |b| {
        if !printed.replace(true) {
            let idle = idle_consumer(Duration::from_secs(1));
            eprintln!(
                "latency/idle: a consumer blocked 1 s on an empty queue used {:?} of CPU while blocked, \
                 {} futex waits; the whole child (fork to exit): {:?} CPU, {} voluntary / {} involuntary \
                 context switches",
                idle.blocked_cpu,
                idle.futex_waits,
                cpu_time(&idle.usage),
                idle.usage.ru_nvcsw,
                idle.usage.ru_nivcsw,
            );
        }
        b.iter_custom(|iters| {
            idle_consumer(IDLE_STEP.saturating_mul(u32::try_from(iters).unwrap_or(u32::MAX))).blocked_cpu
        })
    });
    group.finish();
}

fn main() {
    common::run(&[ping_pong, idle]);
}
