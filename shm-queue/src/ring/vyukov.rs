//! Many producers and/or many consumers: Dmitry Vyukov's bounded MPMC queue, extended to spans.
//!
//! Each slot has a sequence number. Slot `pos & mask` is free for position `pos` when its
//! sequence is `2·pos`, holds the item of position `pos` when it is `2·pos + 1`, and is free
//! again for `pos + capacity` (sequence `2·(pos + capacity)`) once consumed. Vyukov's original
//! uses `pos`, `pos + 1` and `pos + capacity`, which coincide for a capacity of 1; doubling keeps
//! "full" and "free for the next lap" apart at every capacity. A producer claims positions by CAS on `tail` (or, when it
//! is the only producer, by keeping `tail` privately and storing it at commit); a consumer
//! claims by CAS on `head` likewise. A span claims a run of consecutive slots whose sequence
//! numbers all say "free" (or "ready") in one CAS, so chunked transfer costs one CAS per chunk.
//!
//! Pairs: commit stores each slot's sequence with Release after writing it; acquire loads it
//! with Acquire before reading. Release stores `pos + capacity` with Release after reading;
//! reserve loads it with Acquire before overwriting.
//!
//! Limit, honestly: a producer that dies between its claim (CAS on `tail`) and its commit
//! leaves a slot that never becomes ready. Consumers see the ring as empty from that position
//! on; the blocking layer detects the dead owner and poisons the queue. What is lost is at most
//! the dead process's uncommitted reservation; items behind it stay unreadable.

use super::{ConsumerCursor, ProducerCursor, RawRing, Span};
use crate::sync::Ordering;

/// The sequence number of a slot that is free for position `pos`.
#[inline]
pub(crate) fn free_seq(pos: u64) -> u64 {
    pos.wrapping_mul(2)
}

/// The sequence number of a slot that holds the item of position `pos`.
#[inline]
pub(crate) fn ready_seq(pos: u64) -> u64 {
    pos.wrapping_mul(2).wrapping_add(1)
}

impl<T> RawRing<T> {
    pub(super) fn vyukov_reserve(&self, cur: &mut ProducerCursor, max: usize) -> Option<Span> {
        let multi = self.kind.multi_producer();
        let ctl = self.control();
        let mut tail = if multi { ctl.tail.load(Ordering::Relaxed) } else { cur.tail };
        loop {
            let want = self.contiguous(tail, max);
            let mut len = 0;
            while len < want {
                let pos = tail.wrapping_add(len as u64);
                if self.seq(pos).load(Ordering::Acquire) != free_seq(pos) {
                    break;
                }
                len += 1;
            }
            if len == 0 {
                let lag = self.seq(tail).load(Ordering::Acquire).wrapping_sub(free_seq(tail)) as i64;
                if lag < 0 || !multi {
                    // The slot still holds the previous lap's item: full.
                    return None;
                }
                // Another producer claimed `tail` already; catch up, unless nothing moved
                // (a scribbled sequence): then report full rather than spin forever.
                let now = ctl.tail.load(Ordering::Relaxed);
                if now == tail {
                    return None;
                }
                tail = now;
                continue;
            }
            if !multi {
                return Some(Span { pos: tail, len });
            }
            let next = tail.wrapping_add(len as u64);
            match ctl.tail.compare_exchange_weak(tail, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(Span { pos: tail, len }),
                Err(now) => tail = now,
            }
        }
    }

    pub(super) fn vyukov_commit(&self, cur: &mut ProducerCursor, span: Span) {
        for i in 0..span.len as u64 {
            let pos = span.pos.wrapping_add(i);
            self.seq(pos).store(ready_seq(pos), Ordering::Release);
        }
        if !self.kind.multi_producer() {
            cur.tail = span.pos.wrapping_add(span.len as u64);
            // Only for fill and statistics: consumers synchronise on the sequence numbers.
            self.control().tail.store(cur.tail, Ordering::Release);
        }
    }

    pub(super) fn vyukov_acquire(&self, cur: &mut ConsumerCursor, max: usize) -> Option<Span> {
        let multi = self.kind.multi_consumer();
        let ctl = self.control();
        let mut head = if multi { ctl.head.load(Ordering::Relaxed) } else { cur.head };
        loop {
            let want = self.contiguous(head, max);
            let mut len = 0;
            while len < want {
                let pos = head.wrapping_add(len as u64);
                if self.seq(pos).load(Ordering::Acquire) != ready_seq(pos) {
                    break;
                }
                len += 1;
            }
            if len == 0 {
                let lag = self.seq(head).load(Ordering::Acquire).wrapping_sub(ready_seq(head)) as i64;
                if lag < 0 || !multi {
                    // Not yet published (or not yet produced at all): empty from here.
                    return None;
                }
                let now = ctl.head.load(Ordering::Relaxed);
                if now == head {
                    return None;
                }
                head = now;
                continue;
            }
            if !multi {
                return Some(Span { pos: head, len });
            }
            let next = head.wrapping_add(len as u64);
            match ctl.head.compare_exchange_weak(head, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(Span { pos: head, len }),
                Err(now) => head = now,
            }
        }
    }

    pub(super) fn vyukov_release(&self, cur: &mut ConsumerCursor, span: Span) {
        for i in 0..span.len as u64 {
            let pos = span.pos.wrapping_add(i);
            self.seq(pos).store(free_seq(pos.wrapping_add(self.capacity)), Ordering::Release);
        }
        if !self.kind.multi_consumer() {
            cur.head = span.pos.wrapping_add(span.len as u64);
            self.control().head.store(cur.head, Ordering::Release);
        }
    }
}
