//! The ring core on heap memory: single-threaded edge cases and threaded exactly-once runs.
//! Also what Miri runs (`scripts/miri.sh`).

use std::sync::Arc;

use super::{RawRing, Span};
use crate::fingerprint::TypeFingerprint;
use crate::header::{Header, Layout};
use crate::kind::KindId;
use crate::region::Region;
use crate::wake::WakePolicy;

pub(crate) fn heap_ring(kind: KindId, capacity: usize) -> RawRing<u64> {
    bounded_heap_ring(kind, capacity, capacity)
}

pub(crate) fn bounded_heap_ring(kind: KindId, capacity: usize, bound: usize) -> RawRing<u64> {
    let layout = Layout::compute(kind, capacity, 8, 8).unwrap();
    let header = Header::new(kind, capacity, bound, &TypeFingerprint::of::<u64>(), WakePolicy::Eager, 100, layout);
    let region = Region::heap(header, layout, kind, capacity);
    // SAFETY: `Region::heap` initialised exactly this layout.
    unsafe { RawRing::new(Arc::new(region), layout, kind, capacity, bound) }
}

const KINDS: [KindId; 4] = [KindId::Spsc, KindId::Mpsc, KindId::Spmc, KindId::Mpmc];

fn push(ring: &RawRing<u64>, cur: &mut super::ProducerCursor, v: u64) -> bool {
    match ring.reserve(cur, 1) {
        Some(span) => {
            // SAFETY: fresh reservation.
            unsafe { ring.slots_mut(span)[0].write(v) };
            ring.commit(cur, span);
            true
        }
        None => false,
    }
}

fn pop(ring: &RawRing<u64>, cur: &mut super::ConsumerCursor) -> Option<u64> {
    let span = ring.acquire(cur, 1)?;
    // SAFETY: acquired, released right after.
    let v = unsafe { ring.slots(span)[0] };
    ring.release(cur, span);
    Some(v)
}

#[test]
fn fills_to_capacity_then_refuses_then_drains_in_order() {
    for kind in KINDS {
        for capacity in [1, 2, 8] {
            let ring = heap_ring(kind, capacity);
            let (mut p, mut c) = (ring.producer_cursor(), ring.consumer_cursor());
            for lap in 0..3u64 {
                for i in 0..capacity as u64 {
                    assert!(push(&ring, &mut p, lap * 100 + i), "{kind} cap {capacity}: room for item {i}");
                }
                assert!(!push(&ring, &mut p, 999), "{kind} cap {capacity}: full");
                assert!(!ring.room_ready(&p));
                assert!(ring.item_ready(&c));
                for i in 0..capacity as u64 {
                    assert_eq!(pop(&ring, &mut c), Some(lap * 100 + i), "{kind} cap {capacity}");
                }
                assert_eq!(pop(&ring, &mut c), None, "{kind} cap {capacity}: empty");
                assert!(!ring.item_ready(&c));
            }
        }
    }
}

#[test]
fn spans_never_wrap_past_the_array_end() {
    for kind in KINDS {
        let ring = heap_ring(kind, 8);
        let (mut p, mut c) = (ring.producer_cursor(), ring.consumer_cursor());
        for v in 0..5 {
            assert!(push(&ring, &mut p, v));
        }
        for _ in 0..5 {
            pop(&ring, &mut c).unwrap();
        }
        // Position 5: only 3 slots to the end of the array.
        let span = ring.reserve(&mut p, 8).unwrap();
        assert_eq!(span, Span { pos: 5, len: 3 }, "{kind}");
        ring.commit(&mut p, span);
        let span = ring.reserve(&mut p, 8).unwrap();
        assert_eq!(span, Span { pos: 8, len: 5 }, "{kind}: the rest of the free room");
        ring.commit(&mut p, span);
        let read = ring.acquire(&mut c, 100).unwrap();
        assert_eq!(read, Span { pos: 5, len: 3 }, "{kind}");
        ring.release(&mut c, read);
        assert_eq!(ring.acquire(&mut c, 100).unwrap().len, 5, "{kind}");
    }
}

#[test]
fn abandoning_is_harmless_only_for_single_producer_kinds() {
    for kind in KINDS {
        let ring = heap_ring(kind, 4);
        let mut p = ring.producer_cursor();
        let span = ring.reserve(&mut p, 2).unwrap();
        assert_eq!(ring.abandon(span), !kind.multi_producer(), "{kind}");
    }
}

#[test]
fn scribbled_indices_cannot_cause_out_of_bounds_spans() {
    use crate::sync::Ordering;
    for kind in KINDS {
        let ring = heap_ring(kind, 4);
        let ctl = ring.control();
        ctl.tail.store(u64::MAX - 1, Ordering::Relaxed);
        ctl.head.store(3, Ordering::Relaxed);
        let mut c = ring.consumer_cursor();
        if let Some(span) = ring.acquire(&mut c, 1000) {
            assert!(span.len <= 4 - (span.pos & 3) as usize, "{kind}: span inside the array");
        }
        let mut p = ring.producer_cursor();
        if let Some(span) = ring.reserve(&mut p, 1000) {
            assert!(span.len <= 4 - (span.pos & 3) as usize, "{kind}: span inside the array");
        }
    }
}

/// Threads on heap memory: every item exactly once, per-producer order kept per consumer.
fn threaded_exactly_once(kind: KindId, capacity: usize, producers: u64, consumers: usize, per_producer: u64) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let ring = heap_ring(kind, capacity);
    let seen: Arc<Vec<AtomicBool>> = Arc::new((0..producers * per_producer).map(|_| AtomicBool::new(false)).collect());
    let taken = Arc::new(AtomicUsize::new(0));
    let total = (producers * per_producer) as usize;
    std::thread::scope(|s| {
        for id in 0..producers {
            let ring = ring.clone();
            s.spawn(move || {
                let mut cur = ring.producer_cursor();
                for i in 0..per_producer {
                    while !push(&ring, &mut cur, id << 32 | i) {
                        std::thread::yield_now();
                    }
                }
            });
        }
        for _ in 0..consumers {
            let ring = ring.clone();
            let (seen, taken) = (Arc::clone(&seen), Arc::clone(&taken));
            s.spawn(move || {
                let mut cur = ring.consumer_cursor();
                let mut last = vec![None::<u64>; producers as usize];
                while taken.load(Ordering::Relaxed) < total {
                    let Some(span) = ring.acquire(&mut cur, 7) else {
                        std::thread::yield_now();
                        continue;
                    };
                    // SAFETY: acquired, released below.
                    for &v in unsafe { ring.slots(span) } {
                        let (id, i) = ((v >> 32) as usize, v & 0xffff_ffff);
                        assert!(last[id].is_none_or(|l| l < i), "per-producer order");
                        last[id] = Some(i);
                        let idx = id * per_producer as usize + i as usize;
                        assert!(!seen[idx].swap(true, Ordering::Relaxed), "item {v:#x} twice");
                    }
                    taken.fetch_add(span.len, Ordering::Relaxed);
                    ring.release(&mut cur, span);
                }
            });
        }
    });
    assert!(seen.iter().all(|b| b.load(Ordering::Relaxed)), "every item seen");
}

#[test]
fn threads_deliver_exactly_once_for_every_kind() {
    let per = if cfg!(miri) { 30 } else { 20_000 };
    for capacity in [1, 2, 64] {
        threaded_exactly_once(KindId::Spsc, capacity, 1, 1, per);
        threaded_exactly_once(KindId::Mpsc, capacity, 2, 1, per);
        threaded_exactly_once(KindId::Spmc, capacity, 1, 2, per);
        threaded_exactly_once(KindId::Mpmc, capacity, 2, 2, per);
    }
}

#[test]
fn a_bounded_spsc_ring_holds_only_its_bound() {
    let ring = bounded_heap_ring(KindId::Spsc, 16, 10);
    let (mut p, mut c) = (ring.producer_cursor(), ring.consumer_cursor());
    for lap in 0..5u64 {
        for i in 0..10 {
            assert!(push(&ring, &mut p, lap * 10 + i), "room for item {i}");
        }
        assert!(!push(&ring, &mut p, 99), "full at the bound, not at the capacity");
        assert!(!ring.room_ready(&p));
        for i in 0..10 {
            assert_eq!(pop(&ring, &mut c), Some(lap * 10 + i));
        }
    }
}
