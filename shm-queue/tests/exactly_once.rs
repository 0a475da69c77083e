//! Every item arrives exactly once, in each producer's order, between processes.
//!
//! For each kind (SPSC 1x1, MPSC 2x1, SPMC 1x2, MPMC 2x2) and capacity (1, 2, 1024), the case
//! process creates the queue and forks every producer and every consumer into its own process.
//! `SHMQ_ITEMS` items in all (default 10^5) are split between the producers. Consumers mark each
//! item in a shared array of flags (a duplicate fails), check that each producer's items come in
//! increasing order, and stop on `Disconnected` (the last producer's drop closes the queue).
//! The APIs vary between cases: `push`/`pop`, `push_slice`/`pop_into`, `write_chunk`/`read_chunk`.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use shm_queue::{Kind, Mpmc, Mpsc, PopError, Queue, Spmc, Spsc};
use support::SharedSlice;

/// How producers write.
#[derive(Debug, Clone, Copy)]
enum Put {
    /// `push`, one item at a time.
    Push,
    /// `push_slice` of batches of varying length.
    Slice,
    /// `write_chunk` of up to a varying length, written in place, then `commit`.
    Chunk,
}

/// How consumers read.
#[derive(Debug, Clone, Copy)]
enum Take {
    /// `pop`, one item at a time.
    Pop,
    /// `pop_into` a buffer.
    Into,
    /// `read_chunk`, read in place.
    Chunk,
}

/// Items carry their producer in the top bits and their index in that producer's run below.
const PRODUCER_SHIFT: u32 = 40;

fn item(producer: usize, index: u64) -> u64 {
    ((producer as u64) << PRODUCER_SHIFT) | index
}

/// Batch lengths 1..=97 in a fixed pattern: chunks that are smaller, equal and larger than
/// the ring, and that stop short of its end.
fn batch_len(step: u64) -> usize {
    1 + (step.wrapping_mul(7) % 97) as usize
}

/// What every process of a case shares (mapped before the forks).
struct Shared {
    /// One flag per item: set by the consumer that got it.
    seen: SharedSlice<AtomicU8>,
    /// Items taken by each consumer.
    taken: SharedSlice<AtomicUsize>,
    /// Endpoints attached so far: nobody starts before all are, so no end can see the queue
    /// closed before its peers arrive.
    attached: SharedSlice<AtomicUsize>,
}

impl Shared {
    fn barrier(&self, endpoints: usize) {
        self.attached[0].fetch_add(1, Ordering::AcqRel);
        support::wait_until(|| self.attached[0].load(Ordering::Acquire) >= endpoints);
    }
}

fn produce<K: Kind>(
    name: &str,
    who: usize,
    per_producer: u64,
    put: Put,
    shared: &Shared,
    endpoints: usize,
) -> Result<(), String> {
    let queue = Queue::<u64, K>::open(name).map_err(|e| format!("open: {e}"))?;
    let mut tx = queue.producer().map_err(|e| format!("attach producer: {e}"))?;
    shared.barrier(endpoints);
    let mut next = 0u64;
    let mut step = 0u64;
    while next < per_producer {
        match put {
            Put::Push => {
                tx.push(item(who, next)).map_err(|e| format!("push {next}: {e}"))?;
                next += 1;
            }
            Put::Slice => {
                let n = (batch_len(step) as u64).min(per_producer - next);
                let batch: Vec<u64> = (next..next + n).map(|i| item(who, i)).collect();
                tx.push_slice(&batch).map_err(|e| format!("push_slice at {next}: {e}"))?;
                next += n;
            }
            Put::Chunk => {
                let want = (batch_len(step) as u64).min(per_producer - next) as usize;
                let mut chunk = tx.write_chunk(want).map_err(|e| format!("write_chunk at {next}: {e}"))?;
                if chunk.is_empty() || chunk.len() > want {
                    return Err(format!("write_chunk({want}) gave {} slots", chunk.len()));
                }
                for (i, slot) in chunk.as_mut_slice().iter_mut().enumerate() {
                    *slot = item(who, next + i as u64);
                }
                next += chunk.len() as u64;
                chunk.commit();
            }
        }
        step += 1;
    }
    // Dropping the last producer closes the queue.
    drop(tx);
    Ok(())
}

/// Checks and records one item; `last[p]` is the last index seen from producer `p`.
fn record(
    v: u64,
    producers: usize,
    per_producer: u64,
    last: &mut [Option<u64>],
    shared: &Shared,
) -> Result<(), String> {
    let producer = (v >> PRODUCER_SHIFT) as usize;
    let index = v & ((1 << PRODUCER_SHIFT) - 1);
    if producer >= producers || index >= per_producer {
        return Err(format!("item {v:#x} was never pushed"));
    }
    if let Some(prev) = last[producer] {
        if index <= prev {
            return Err(format!("producer {producer}: item {index} after item {prev}"));
        }
    }
    last[producer] = Some(index);
    let flag = &shared.seen[producer * per_producer as usize + index as usize];
    if flag.swap(1, Ordering::Relaxed) != 0 {
        return Err(format!("item {v:#x} delivered twice"));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn consume<K: Kind>(
    name: &str,
    who: usize,
    producers: usize,
    per_producer: u64,
    take: Take,
    shared: &Shared,
    endpoints: usize,
) -> Result<(), String> {
    let queue = Queue::<u64, K>::open(name).map_err(|e| format!("open: {e}"))?;
    let mut rx = queue.consumer().map_err(|e| format!("attach consumer: {e}"))?;
    shared.barrier(endpoints);
    let mut last = vec![None; producers];
    let mut taken = 0usize;
    let mut buf = vec![0u64; 64];
    let mut step = 0u64;
    let end = loop {
        let got = match take {
            Take::Pop => rx.pop().map(|v| record(v, producers, per_producer, &mut last, shared).map(|()| 1)),
            Take::Into => {
                let want = batch_len(step).min(buf.len());
                rx.pop_into(&mut buf[..want]).map(|n| {
                    if n == 0 || n > want {
                        return Err(format!("pop_into of {want} returned {n}"));
                    }
                    buf[..n].iter().try_for_each(|&v| record(v, producers, per_producer, &mut last, shared)).map(|()| n)
                })
            }
            Take::Chunk => {
                let want = batch_len(step);
                rx.read_chunk(want).map(|chunk| {
                    if chunk.is_empty() || chunk.len() > want {
                        return Err(format!("read_chunk of {want} gave {}", chunk.len()));
                    }
                    chunk
                        .iter()
                        .try_for_each(|&v| record(v, producers, per_producer, &mut last, shared))
                        .map(|()| chunk.len())
                })
            }
        };
        step += 1;
        match got {
            Ok(Ok(n)) => taken += n,
            Ok(Err(msg)) => return Err(msg),
            Err(e) => break e,
        }
    };
    shared.taken[who].store(taken, Ordering::Relaxed);
    if end != PopError::Disconnected {
        return Err(format!("consumer {who} ended with {end:?} after {taken} items, not Disconnected"));
    }
    // Closed stays closed.
    match rx.try_pop() {
        Err(PopError::Disconnected) => Ok(()),
        other => Err(format!("try_pop after Disconnected gave {other:?}")),
    }
}

fn exactly_once<K: Kind>(producers: usize, consumers: usize, capacity: usize, put: Put, take: Take) {
    let total = support::items(100_000);
    let per_producer = total.div_ceil(producers as u64);
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, capacity).expect("create");
    let shared = Shared {
        seen: SharedSlice::new(per_producer as usize * producers),
        taken: SharedSlice::new(consumers),
        attached: SharedSlice::new(1),
    };
    let endpoints = producers + consumers;
    let mut children = Vec::new();
    for c in 0..consumers {
        let child = support::fork_ok(|| consume::<K>(&name, c, producers, per_producer, take, &shared, endpoints));
        children.push((format!("consumer {c}"), child));
    }
    for p in 0..producers {
        let child = support::fork_ok(|| produce::<K>(&name, p, per_producer, put, &shared, endpoints));
        children.push((format!("producer {p}"), child));
    }
    for (what, child) in children {
        child.wait_ok(&what);
    }
    let taken: usize = shared.taken.iter().map(|t| t.load(Ordering::Relaxed)).sum();
    assert_eq!(taken, shared.seen.len(), "items taken by all consumers");
    let missing: Vec<usize> =
        (0..shared.seen.len()).filter(|&i| shared.seen[i].load(Ordering::Relaxed) == 0).take(10).collect();
    assert!(missing.is_empty(), "items never delivered (first ten flag indices): {missing:?}");
    let stats = queue.stats();
    assert_eq!(stats.pushed, shared.seen.len() as u64, "{stats:?}");
    assert_eq!(stats.popped, shared.seen.len() as u64, "{stats:?}");
    assert!(stats.producers_gone && stats.consumers_gone && !stats.poisoned, "{stats:?}");
}

macro_rules! exactly_once_cases {
    ($($name:ident: $kind:ty, $p:expr, $c:expr, cap $cap:expr, $put:ident -> $take:ident;)*) => {
        $(fn $name() { exactly_once::<$kind>($p, $c, $cap, Put::$put, Take::$take) })*
        fn main() { support::main(cases![$($name),*]) }
    };
}

// Every pairing of a producer API with a consumer API appears at least once.
exactly_once_cases! {
    spsc_1x1_cap1_push_to_pop: Spsc, 1, 1, cap 1, Push -> Pop;
    spsc_1x1_cap2_chunk_to_chunk: Spsc, 1, 1, cap 2, Chunk -> Chunk;
    spsc_1x1_cap1024_slice_to_into: Spsc, 1, 1, cap 1024, Slice -> Into;
    mpsc_2x1_cap1_chunk_to_into: Mpsc, 2, 1, cap 1, Chunk -> Into;
    mpsc_2x1_cap2_slice_to_pop: Mpsc, 2, 1, cap 2, Slice -> Pop;
    mpsc_2x1_cap1024_push_to_chunk: Mpsc, 2, 1, cap 1024, Push -> Chunk;
    spmc_1x2_cap1_slice_to_chunk: Spmc, 1, 2, cap 1, Slice -> Chunk;
    spmc_1x2_cap2_push_to_into: Spmc, 1, 2, cap 2, Push -> Into;
    spmc_1x2_cap1024_chunk_to_pop: Spmc, 1, 2, cap 1024, Chunk -> Pop;
    mpmc_2x2_cap1_push_to_pop: Mpmc, 2, 2, cap 1, Push -> Pop;
    mpmc_2x2_cap2_chunk_to_into: Mpmc, 2, 2, cap 2, Chunk -> Into;
    mpmc_2x2_cap1024_slice_to_chunk: Mpmc, 2, 2, cap 1024, Slice -> Chunk;
}
