//! Loom models of the ring core: every interleaving (up to loom's bounds) of push, pop and
//! close, for every kind, at capacities 1 and 2.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p shm-queue --lib --release -- loom
//! ```
//! (`scripts/loom.sh` sets a separate target directory and the preemption bound.)

use std::sync::Arc;

use loom::thread;

use super::{ConsumerCursor, ProducerCursor, RawRing};
use crate::control::PRODUCERS_GONE;
use crate::fingerprint::TypeFingerprint;
use crate::header::{Header, Layout};
use crate::kind::KindId;
use crate::region::Region;
use crate::sync::Ordering;
use crate::wake::WakePolicy;

/// Spin-retry loops (yield and try again) need more branches than loom's default allows.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

fn ring(kind: KindId, capacity: usize) -> RawRing<u64> {
    let layout = Layout::compute(kind, capacity, 8, 8).unwrap();
    let header = Header::new(kind, capacity, capacity, &TypeFingerprint::of::<u64>(), WakePolicy::Eager, 100, layout);
    let region = Region::heap(header, layout, kind, capacity);
    // SAFETY: `Region::heap` initialised exactly this layout.
    unsafe { RawRing::new(Arc::new(region), layout, kind, capacity, capacity) }
}

fn push(ring: &RawRing<u64>, cur: &mut ProducerCursor, v: u64) {
    loop {
        if let Some(span) = ring.reserve(cur, 1) {
            // SAFETY: fresh reservation.
            unsafe { ring.slots_mut(span)[0].write(v) };
            ring.commit(cur, span);
            return;
        }
        thread::yield_now();
    }
}

/// Pops until the producers are gone and the ring is drained: the close protocol of
/// `Consumer::take` (flags with Acquire, then one more look).
fn drain(ring: &RawRing<u64>, cur: &mut ConsumerCursor, out: &mut Vec<u64>) {
    loop {
        if let Some(span) = ring.acquire(cur, 1) {
            // SAFETY: acquired, released right after.
            out.push(unsafe { ring.slots(span)[0] });
            ring.release(cur, span);
            continue;
        }
        if ring.control().state.flags.load(Ordering::Acquire) & PRODUCERS_GONE != 0 {
            if let Some(span) = ring.acquire(cur, 1) {
                // SAFETY: as above.
                out.push(unsafe { ring.slots(span)[0] });
                ring.release(cur, span);
                continue;
            }
            return;
        }
        thread::yield_now();
    }
}

/// The last producer's close, as `endpoint::detach` does it.
fn close(ring: &RawRing<u64>) {
    ring.control().state.flags.fetch_or(PRODUCERS_GONE, Ordering::AcqRel);
}

fn single_producer_single_consumer(kind: KindId, capacity: usize) {
    model(move || {
        let r = ring(kind, capacity);
        let producer = {
            let r = r.clone();
            thread::spawn(move || {
                let mut cur = r.producer_cursor();
                for v in 1..=3 {
                    push(&r, &mut cur, v);
                }
                close(&r);
            })
        };
        let mut cur = r.consumer_cursor();
        let mut got = Vec::new();
        drain(&r, &mut cur, &mut got);
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3], "{kind}: every item, in order, before Disconnected");
    });
}

#[test]
fn loom_spsc_capacity_1_and_2() {
    single_producer_single_consumer(KindId::Spsc, 1);
    single_producer_single_consumer(KindId::Spsc, 2);
}

#[test]
fn loom_spmc_with_one_consumer() {
    single_producer_single_consumer(KindId::Spmc, 2);
}

/// Up to `attempts` pops, yielding between failures: bounded, so loom's search stays finite.
fn try_pops(ring: &RawRing<u64>, cur: &mut ConsumerCursor, attempts: usize, out: &mut Vec<u64>) {
    for _ in 0..attempts {
        match ring.acquire(cur, 1) {
            Some(span) => {
                // SAFETY: acquired, released right after.
                out.push(unsafe { ring.slots(span)[0] });
                ring.release(cur, span);
            }
            None => thread::yield_now(),
        }
    }
}

/// Two producers race to claim slots while a consumer pops concurrently (a bounded number of
/// times); after the joins, the rest is drained. Every item exactly once.
#[test]
fn loom_mpsc_two_producers() {
    model(|| {
        let r = ring(KindId::Mpsc, 2);
        let producers: Vec<_> = (0..2u64)
            .map(|id| {
                let r = r.clone();
                thread::spawn(move || {
                    let mut cur = r.producer_cursor();
                    push(&r, &mut cur, 10 * id + 1);
                })
            })
            .collect();
        let mut cur = r.consumer_cursor();
        let mut got = Vec::new();
        try_pops(&r, &mut cur, 2, &mut got);
        for p in producers {
            p.join().unwrap();
        }
        close(&r);
        drain(&r, &mut cur, &mut got);
        got.sort_unstable();
        assert_eq!(got, [1, 11], "each item exactly once");
    });
}

/// One producer, two consumers racing to claim: every item exactly once.
#[test]
fn loom_mpmc_two_consumers() {
    model(|| {
        let r = ring(KindId::Mpmc, 2);
        let producer = {
            let r = r.clone();
            thread::spawn(move || {
                let mut cur = r.producer_cursor();
                push(&r, &mut cur, 1);
                push(&r, &mut cur, 2);
            })
        };
        let other = {
            let r = r.clone();
            thread::spawn(move || {
                let mut cur = r.consumer_cursor();
                let mut got = Vec::new();
                try_pops(&r, &mut cur, 2, &mut got);
                got
            })
        };
        let mut cur = r.consumer_cursor();
        let mut got = Vec::new();
        try_pops(&r, &mut cur, 1, &mut got);
        producer.join().unwrap();
        got.extend(other.join().unwrap());
        close(&r);
        drain(&r, &mut cur, &mut got);
        got.sort_unstable();
        assert_eq!(got, [1, 2], "each item exactly once across consumers");
    });
}
