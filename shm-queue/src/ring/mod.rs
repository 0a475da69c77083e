//! The ring algorithms, over any [`Region`]: no system calls, no waiting, only `try` steps.
//!
//! Every operation works on a *span*: a run of consecutive positions that does not wrap past
//! the end of the slot array, so it can be handed out as one slice. Single items are spans of
//! length one. Producers `reserve` then `commit`; consumers `acquire` then `release`.
//!
//! Positions are 64-bit counters that never wrap in practice (2^64 items); a slot index is
//! `pos & mask`, with `mask` taken from this handle's own copy of the capacity, never from the
//! segment, so whatever another process writes there, every slot access stays in bounds.

mod spsc;
mod vyukov;

pub(crate) use vyukov::free_seq;

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::control::Control;
use crate::header::Layout;
use crate::kind::KindId;
use crate::region::Region;
use crate::sync::{AtomicU64, Ordering};

/// A run of `len` slots starting at position `pos`, owned by one end between reserve/acquire
/// and commit/release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub pos: u64,
    pub len: usize,
}

/// A producer's private view: its next position (authoritative for single-producer kinds) and
/// the last consumer position it saw, so an SPSC push reads the shared head only when the ring
/// looks full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducerCursor {
    pub tail: u64,
    pub cached_head: u64,
}

/// A consumer's private view, the mirror of [`ProducerCursor`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsumerCursor {
    pub head: u64,
    pub cached_tail: u64,
}

/// A typed ring over a region. Cheap to clone (an `Arc` and a few words).
pub(crate) struct RawRing<T> {
    region: Arc<Region>,
    ctl: NonNull<Control>,
    seqs: NonNull<AtomicU64>,
    slots: NonNull<T>,
    capacity: u64,
    mask: u64,
    /// Items allowed in flight: `capacity`, or less for a bounded SPSC ring.
    limit: u64,
    kind: KindId,
    _elements: PhantomData<T>,
}

impl<T> Clone for RawRing<T> {
    fn clone(&self) -> Self {
        Self { region: Arc::clone(&self.region), ..*self }
    }
}

// SAFETY: the ring shares only atomics and slots handed out by its protocol; T: Send is what
// moving elements between threads needs.
unsafe impl<T: Send> Send for RawRing<T> {}
// SAFETY: every method takes &self and synchronises through the control block's atomics.
unsafe impl<T: Send> Sync for RawRing<T> {}

impl<T> RawRing<T> {
    /// # Safety
    /// `region` must hold an initialised ring laid out as `layout` says, with `capacity` slots
    /// of `T` (a power of two) and sequence numbers if `kind` has them.
    /// `bound` (≤ capacity) limits the items in flight; only SPSC honours a smaller one.
    pub unsafe fn new(region: Arc<Region>, layout: Layout, kind: KindId, capacity: usize, bound: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        debug_assert!(bound >= 1 && bound <= capacity);
        assert!(layout.total_len <= region.len(), "layout exceeds its region");
        let base = region.base().as_ptr();
        // SAFETY: offsets are within the region (asserted above) and the caller vouches for
        // what lies there; none of them is null because base is not.
        let (ctl, seqs, slots) = unsafe {
            (
                NonNull::new_unchecked(base.add(layout.control_offset).cast::<Control>()),
                NonNull::new_unchecked(base.add(layout.seqs_offset).cast::<AtomicU64>()),
                NonNull::new_unchecked(base.add(layout.slots_offset).cast::<T>()),
            )
        };
        Self {
            region,
            ctl,
            seqs,
            slots,
            capacity: capacity as u64,
            mask: capacity as u64 - 1,
            limit: bound.clamp(1, capacity) as u64,
            kind,
            _elements: PhantomData,
        }
    }

    pub fn control(&self) -> &Control {
        // SAFETY: initialised control block inside a region this ring keeps alive.
        unsafe { self.ctl.as_ref() }
    }

    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Items allowed in flight.
    pub fn bound(&self) -> usize {
        self.limit as usize
    }

    pub fn kind(&self) -> KindId {
        self.kind
    }

    /// The sequence number of the slot for `pos` (Vyukov kinds only).
    fn seq(&self, pos: u64) -> &AtomicU64 {
        debug_assert!(self.kind.has_slot_sequences());
        // SAFETY: the index is masked with our own capacity, so it lies within the sequence
        // array, which `new`'s caller vouched for.
        unsafe { &*self.seqs.as_ptr().add((pos & self.mask) as usize) }
    }

    /// The largest span starting at `pos` that does not wrap past the slot array's end.
    fn contiguous(&self, pos: u64, want: usize) -> usize {
        let to_end = self.capacity - (pos & self.mask);
        want.min(to_end as usize)
    }

    /// A fresh producer cursor from the shared indices (at attach or adoption).
    pub fn producer_cursor(&self) -> ProducerCursor {
        let ctl = self.control();
        ProducerCursor { tail: ctl.tail.load(Ordering::Acquire), cached_head: ctl.head.load(Ordering::Acquire) }
    }

    /// A fresh consumer cursor from the shared indices.
    pub fn consumer_cursor(&self) -> ConsumerCursor {
        let ctl = self.control();
        ConsumerCursor { head: ctl.head.load(Ordering::Acquire), cached_tail: ctl.tail.load(Ordering::Acquire) }
    }

    /// Claims up to `max` free slots; `None` when the ring is full.
    pub fn reserve(&self, cur: &mut ProducerCursor, max: usize) -> Option<Span> {
        if max == 0 {
            return None;
        }
        match self.kind {
            KindId::Spsc => self.spsc_reserve(cur, max),
            _ => self.vyukov_reserve(cur, max),
        }
    }

    /// Publishes a reserved span to consumers.
    pub fn commit(&self, cur: &mut ProducerCursor, span: Span) {
        match self.kind {
            KindId::Spsc => self.spsc_commit(cur, span),
            _ => self.vyukov_commit(cur, span),
        }
    }

    /// Gives a reserved span up without publishing it. `false` when that is impossible (a
    /// multi-producer claim cannot be undone): the caller must then poison the queue.
    pub fn abandon(&self, span: Span) -> bool {
        let _ = span;
        !self.kind.multi_producer()
    }

    /// Takes up to `max` published items; `None` when none is ready.
    pub fn acquire(&self, cur: &mut ConsumerCursor, max: usize) -> Option<Span> {
        if max == 0 {
            return None;
        }
        match self.kind {
            KindId::Spsc => self.spsc_acquire(cur, max),
            _ => self.vyukov_acquire(cur, max),
        }
    }

    /// Hands an acquired span's slots back to producers.
    pub fn release(&self, cur: &mut ConsumerCursor, span: Span) {
        match self.kind {
            KindId::Spsc => self.spsc_release(cur, span),
            _ => self.vyukov_release(cur, span),
        }
    }

    /// Whether an item looks ready (a cheap check for spinning and sleeping; may be stale).
    pub fn item_ready(&self, cur: &ConsumerCursor) -> bool {
        match self.kind {
            KindId::Spsc => self.control().tail.load(Ordering::Acquire) != cur.head,
            _ => {
                let head =
                    if self.kind.multi_consumer() { self.control().head.load(Ordering::Acquire) } else { cur.head };
                self.seq(head).load(Ordering::Acquire) == vyukov::ready_seq(head)
            }
        }
    }

    /// Whether a slot looks free.
    pub fn room_ready(&self, cur: &ProducerCursor) -> bool {
        match self.kind {
            KindId::Spsc => cur.tail.wrapping_sub(self.control().head.load(Ordering::Acquire)) < self.limit,
            _ => {
                let tail =
                    if self.kind.multi_producer() { self.control().tail.load(Ordering::Acquire) } else { cur.tail };
                self.seq(tail).load(Ordering::Acquire) == vyukov::free_seq(tail)
            }
        }
    }

    /// Items in the ring (claimed or published), from the shared indices, clamped to capacity.
    pub fn fill(&self) -> u64 {
        let ctl = self.control();
        let tail = ctl.tail.load(Ordering::Relaxed);
        let head = ctl.head.load(Ordering::Relaxed);
        tail.saturating_sub(head).min(self.capacity)
    }

    /// The slots of a reserved span, for writing.
    ///
    /// # Safety
    /// `span` must come from `reserve` on this ring and be neither committed nor abandoned, and
    /// no other slice of it may be alive.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slots_mut(&self, span: Span) -> &mut [MaybeUninit<T>] {
        debug_assert!(span.len <= self.contiguous(span.pos, span.len));
        // SAFETY: masked start and a length bounded by `contiguous` keep us inside the slot
        // array; the reservation makes us its only user until commit.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.slots.as_ptr().add((span.pos & self.mask) as usize).cast::<MaybeUninit<T>>(),
                span.len,
            )
        }
    }

    /// The items of an acquired span.
    ///
    /// # Safety
    /// `span` must come from `acquire` on this ring and not be released yet; `T` must be valid
    /// for any bits (it is `Pod` at the public interface), since the bytes came from elsewhere.
    pub unsafe fn slots(&self, span: Span) -> &[T] {
        debug_assert!(span.len <= self.contiguous(span.pos, span.len));
        // SAFETY: as in `slots_mut`; producers do not write these slots until we release them.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().add((span.pos & self.mask) as usize), span.len) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
