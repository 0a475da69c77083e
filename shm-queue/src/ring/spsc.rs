//! Single producer, single consumer: Lamport's ring with cached indices (as in rtrb).
//!
//! The producer alone writes `tail`, the consumer alone writes `head`. Each keeps a private copy
//! of the other's index and re-reads the shared one only when its copy says full (or empty), so
//! in steady state a push touches one shared line it owns. Pairs:
//! - commit stores `tail` with Release after writing the slots; acquire loads it with Acquire
//!   before reading them.
//! - release stores `head` with Release after reading the slots; reserve loads it with Acquire
//!   before overwriting them.

use super::{ConsumerCursor, ProducerCursor, RawRing, Span};
use crate::sync::Ordering;

impl<T> RawRing<T> {
    pub(super) fn spsc_reserve(&self, cur: &mut ProducerCursor, max: usize) -> Option<Span> {
        // `limit` (≤ capacity) bounds the items in flight.
        let mut free = self.limit.saturating_sub(cur.tail.wrapping_sub(cur.cached_head));
        if free < max as u64 {
            cur.cached_head = self.control().head.load(Ordering::Acquire);
            // A scribbled head can make `used` exceed capacity: then there is no room.
            free = self.limit.saturating_sub(cur.tail.wrapping_sub(cur.cached_head));
        }
        if free == 0 {
            return None;
        }
        let len = self.contiguous(cur.tail, max.min(free as usize));
        Some(Span { pos: cur.tail, len })
    }

    pub(super) fn spsc_commit(&self, cur: &mut ProducerCursor, span: Span) {
        cur.tail = span.pos.wrapping_add(span.len as u64);
        self.control().tail.store(cur.tail, Ordering::Release);
    }

    pub(super) fn spsc_acquire(&self, cur: &mut ConsumerCursor, max: usize) -> Option<Span> {
        let mut ready = cur.cached_tail.wrapping_sub(cur.head).min(self.capacity);
        if ready < max as u64 {
            cur.cached_tail = self.control().tail.load(Ordering::Acquire);
            // A scribbled tail can claim more than a ring's worth: read at most a ring.
            ready = cur.cached_tail.wrapping_sub(cur.head).min(self.capacity);
        }
        if ready == 0 {
            return None;
        }
        let len = self.contiguous(cur.head, max.min(ready as usize));
        Some(Span { pos: cur.head, len })
    }

    pub(super) fn spsc_release(&self, cur: &mut ConsumerCursor, span: Span) {
        cur.head = span.pos.wrapping_add(span.len as u64);
        self.control().head.store(cur.head, Ordering::Release);
    }
}
