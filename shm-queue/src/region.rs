//! The memory a ring lives in: a mapped shared-memory segment, or a heap block with the same
//! layout (for threads, unit tests, loom and Miri). The ring algorithm cannot tell them apart.

use std::alloc;
use std::ptr::NonNull;

use crate::control::Control;
use crate::header::{Header, Layout, INIT_READY};
use crate::kind::KindId;
use crate::sync::AtomicU64;

/// An owned, page-aligned block of memory holding one ring.
pub(crate) struct Region {
    base: NonNull<u8>,
    len: usize,
    backing: Backing,
}

enum Backing {
    /// Allocated here; we initialised the atomics and must drop them (loom's need dropping).
    Heap { alloc_layout: alloc::Layout, layout: Layout, capacity: usize, kind: KindId },
    /// A shared-memory segment, held only to be unmapped when the region drops.
    #[cfg(not(loom))]
    Mapped(#[allow(dead_code)] crate::segment::Segment),
}

// SAFETY: a Region is an owned block of memory; all shared access to it goes through atomics or
// through the ring protocol, which hands each slot to one party at a time.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only exposes the base pointer.
unsafe impl Sync for Region {}

impl Region {
    /// A zeroed heap block of `layout.total_len` bytes, initialised as a ring of `kind`;
    /// `None` when the allocator has no such block (a valid capacity of large elements can ask
    /// for more than the address space).
    pub fn try_heap(header: Header, layout: Layout, kind: KindId, capacity: usize) -> Option<Self> {
        // Page-aligned like a mapping: elements may be aligned up to the page size, which is
        // larger than 4096 on some hosts.
        let alloc_layout =
            alloc::Layout::from_size_align(layout.total_len, crate::header::page_size()).expect("layout fits");
        // SAFETY: the layout has non-zero size (it holds at least the header).
        let ptr = unsafe { alloc::alloc_zeroed(alloc_layout) };
        let base = NonNull::new(ptr)?;
        let region =
            Self { base, len: layout.total_len, backing: Backing::Heap { alloc_layout, layout, capacity, kind } };
        // SAFETY: freshly allocated, zeroed, `total_len` bytes, exclusively ours.
        unsafe { initialise(base, header, layout, kind, capacity) };
        Some(region)
    }

    /// [`try_heap`](Self::try_heap) for the small rings of tests and models.
    #[cfg(any(test, loom))]
    pub fn heap(header: Header, layout: Layout, kind: KindId, capacity: usize) -> Self {
        Self::try_heap(header, layout, kind, capacity).expect("a test ring fits in memory")
    }

    /// Wraps a mapped segment.
    #[cfg(not(loom))]
    pub fn from_segment(segment: crate::segment::Segment) -> Self {
        let base = NonNull::new(segment.as_ptr()).expect("a mapping is never at address 0");
        Self { base, len: segment.len(), backing: Backing::Mapped(segment) }
    }

    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match &self.backing {
            Backing::Heap { alloc_layout, layout, capacity, kind } => {
                // SAFETY: we initialised these objects in `heap` and nobody else can hold a
                // reference: every RawRing keeps the Region alive through an Arc.
                unsafe {
                    std::ptr::drop_in_place(self.base.as_ptr().add(layout.control_offset).cast::<Control>());
                    if kind.has_slot_sequences() {
                        let seqs = self.base.as_ptr().add(layout.seqs_offset).cast::<AtomicU64>();
                        std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(seqs, *capacity));
                    }
                    alloc::dealloc(self.base.as_ptr(), *alloc_layout);
                }
            }
            #[cfg(not(loom))]
            Backing::Mapped(_) => {}
        }
    }
}

/// Writes the control block, the slot sequence numbers and the header, then publishes the
/// header by storing `INIT_READY` with Release.
///
/// # Safety
/// `base` points to at least `layout.total_len` writable bytes, page-aligned, zeroed, that no
/// other party reads as a ring until this returns.
pub(crate) unsafe fn initialise(base: NonNull<u8>, header: Header, layout: Layout, kind: KindId, capacity: usize) {
    let base = base.as_ptr();
    // SAFETY: all offsets lie within `total_len` (Layout::compute) and are aligned for their
    // types (control and seqs at cache-line offsets of a page-aligned base).
    unsafe {
        std::ptr::write(base.add(layout.control_offset).cast::<Control>(), Control::default());
        if kind.has_slot_sequences() {
            let seqs = base.add(layout.seqs_offset).cast::<AtomicU64>();
            for i in 0..capacity {
                // Vyukov: slot i is free for position i.
                std::ptr::write(seqs.add(i), AtomicU64::new(crate::ring::free_seq(i as u64)));
            }
        }
        // Every field but `init_state`, which an opener may be polling (atomically) right now:
        // a plain write over it, even of the zero already there, would race with those loads.
        let header_ptr = base.cast::<Header>();
        let state_at = std::mem::offset_of!(Header, init_state);
        let state_end = state_at + std::mem::size_of::<std::sync::atomic::AtomicU32>();
        let src = std::ptr::addr_of!(header).cast::<u8>();
        std::ptr::copy_nonoverlapping(src, base, state_at);
        std::ptr::copy_nonoverlapping(src.add(state_end), base.add(state_end), size_of::<Header>() - state_end);
        // Release: an opener that Acquire-loads READY sees every write above.
        (*header_ptr).init_state.store(INIT_READY, std::sync::atomic::Ordering::Release);
    }
}
