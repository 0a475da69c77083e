//! The shared control block: indices, state flags, wait words, statistics and the endpoint table.
//!
//! Every field is an atomic (another process may touch any of them at any time) and every group
//! written by a different party sits on its own cache line, so a producer's stores never
//! invalidate the line a consumer spins on. The block holds no pointers: only numbers, so it
//! means the same in every process's mapping.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU32, AtomicU64};

/// Endpoints that may be attached to one queue at once (the table lives in the segment).
pub const MAX_ENDPOINTS: usize = 64;

/// `QueueState::flags`: the queue was poisoned (explicitly, after a peer died, by an end dropped
/// during a panic, or by an abandoned multi-producer claim).
pub(crate) const POISONED: u32 = 1;
/// `QueueState::flags`: the poisoning was caused by a dead peer, named in `dead_pid`.
pub(crate) const PEER_DEAD: u32 = 2;
/// `QueueState::flags`: the last producer detached.
pub(crate) const PRODUCERS_GONE: u32 = 4;
/// `QueueState::flags`: the last consumer detached.
pub(crate) const CONSUMERS_GONE: u32 = 8;

/// Bit of `QueueState::producers`/`consumers`: the last endpoint of that role detached, and no
/// new one may attach. Kept in the count word so attach and close cannot race.
pub(crate) const GONE: u32 = 1 << 31;

/// Read on every push and pop (poisoned? anybody left on the other side?), written only at
/// attach, detach and failure: a read-mostly line that stays cached in every core.
#[repr(C)]
#[derive(Default)]
pub(crate) struct QueueState {
    /// `POISONED | PEER_DEAD | PRODUCERS_GONE | CONSUMERS_GONE`, so one load answers all.
    pub flags: AtomicU32,
    pub dead_pid: AtomicU32,
    /// Attached (or handed-over) producers, plus `GONE` once the last one left.
    pub producers: AtomicU32,
    /// The same for consumers.
    pub consumers: AtomicU32,
}

/// One direction of sleeping: consumers wait on `not_empty`, producers on `not_full`.
///
/// Only a sleeper changes `sleepers` (up before it sleeps, down after); a waker only reads it
/// and, when non-zero, bumps `seq` (the futex word) and calls FUTEX_WAKE. A waker that cleared
/// a sleeper's flag could lose a wake-up; this split cannot.
#[repr(C)]
#[derive(Default)]
pub(crate) struct WaitWord {
    pub seq: AtomicU32,
    pub sleepers: AtomicU32,
}

/// Statistics of one side, written by that side only on its slow (blocking) path.
#[repr(C)]
#[derive(Default)]
pub(crate) struct SideStats {
    pub blocked: AtomicU64,
    pub futex_waits: AtomicU64,
    pub futex_wakes: AtomicU64,
    pub blocked_ns: AtomicU64,
}

/// `EndpointSlot::state`: one of the states below in the low bits, and above them a count of
/// the slot's owners, bumped whenever a new owner claims or adopts it. A compare-and-swap by
/// someone who read the slot earlier (a reaper that then spent tens of µs reading `/proc`)
/// fails if the slot changed hands in between, instead of acting on the new owner's end.
// Used by the endpoint table, which the loom build leaves out.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod slot_state {
    pub const FREE: u32 = 0;
    /// Being filled in by an attaching process.
    pub const CLAIMING: u32 = 1;
    pub const ATTACHED: u32 = 2;
    /// Released by its owner for another process to adopt; still counted as attached.
    pub const HANDOVER: u32 = 3;
    /// Its owner died without detaching.
    pub const DEAD: u32 = 4;
    /// The bits that hold the state; the rest count owners.
    pub const MASK: u32 = 0b111;
    const ONE_OWNER: u32 = MASK + 1;

    /// The state in a state word.
    pub fn of(word: u32) -> u32 {
        word & MASK
    }

    /// `word` in `state`, same owner.
    pub fn with(word: u32, state: u32) -> u32 {
        word & !MASK | state
    }

    /// `word` in `state`, for a new owner.
    pub fn next_owner(word: u32, state: u32) -> u32 {
        (word & !MASK).wrapping_add(ONE_OWNER) | state
    }
}

/// Role of an endpoint slot.
pub(crate) const ROLE_PRODUCER: u32 = 1;
pub(crate) const ROLE_CONSUMER: u32 = 2;

/// Who holds an end: the owner's pid and start time, so a dead owner can be recognised.
#[repr(C)]
#[derive(Default)]
pub(crate) struct EndpointSlot {
    pub state: AtomicU32,
    pub role: AtomicU32,
    pub pid: AtomicU32,
    pub _pad: AtomicU32,
    pub start_time: AtomicU64,
}

/// The control block. Its layout is part of the segment format (see `header::FORMAT_VERSION`).
#[repr(C)]
pub(crate) struct Control {
    pub state: CachePadded<QueueState>,
    /// Next position to produce into (Vyukov multi-producer: the claim counter).
    pub tail: CachePadded<AtomicU64>,
    /// Next position to consume from.
    pub head: CachePadded<AtomicU64>,
    pub not_empty: CachePadded<WaitWord>,
    pub not_full: CachePadded<WaitWord>,
    pub producer_stats: CachePadded<SideStats>,
    pub consumer_stats: CachePadded<SideStats>,
    pub endpoints: [EndpointSlot; MAX_ENDPOINTS],
}

impl Default for Control {
    fn default() -> Self {
        Self {
            state: CachePadded::default(),
            tail: CachePadded::default(),
            head: CachePadded::default(),
            not_empty: CachePadded::default(),
            not_full: CachePadded::default(),
            producer_stats: CachePadded::default(),
            consumer_stats: CachePadded::default(),
            endpoints: std::array::from_fn(|_| EndpointSlot::default()),
        }
    }
}
