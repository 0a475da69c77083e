//! Statistics snapshots, readable from any handle or by name without attaching.

use crate::control::{Control, SideStats, CONSUMERS_GONE, GONE, PEER_DEAD, POISONED, PRODUCERS_GONE};
use crate::kind::KindId;
use crate::sync::Ordering;

/// One side's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SideSnapshot {
    /// Operations that had to wait (full for producers, empty for consumers) past the spin.
    pub blocked: u64,
    /// FUTEX_WAIT calls made by this side.
    pub futex_waits: u64,
    /// FUTEX_WAKE calls made by this side (to wake the other).
    pub futex_wakes: u64,
    /// Nanoseconds spent blocked.
    pub blocked_ns: u64,
}

impl SideSnapshot {
    fn read(stats: &SideStats) -> Self {
        Self {
            blocked: stats.blocked.load(Ordering::Relaxed),
            futex_waits: stats.futex_waits.load(Ordering::Relaxed),
            futex_wakes: stats.futex_wakes.load(Ordering::Relaxed),
            blocked_ns: stats.blocked_ns.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a queue's state and counters (fields are read one by one, not atomically as
/// a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// Ring kind.
    pub kind: KindId,
    /// Slots.
    pub capacity: usize,
    /// Items pushed (claimed) so far: the producer position.
    pub pushed: u64,
    /// Items popped (claimed) so far: the consumer position.
    pub popped: u64,
    /// Items in the ring now, clamped to the capacity.
    pub len: u64,
    /// Producers attached (or handed over).
    pub producers: u32,
    /// Consumers attached (or handed over).
    pub consumers: u32,
    /// Every producer has left.
    pub producers_gone: bool,
    /// Every consumer has left.
    pub consumers_gone: bool,
    /// Poisoned.
    pub poisoned: bool,
    /// The dead peer that caused the poisoning, if one did.
    pub dead_peer: Option<u32>,
    /// The producers' counters (blocked on full, wakes of consumers).
    pub producer: SideSnapshot,
    /// The consumers' counters (blocked on empty, wakes of producers).
    pub consumer: SideSnapshot,
}

impl QueueStats {
    pub(crate) fn read(ctl: &Control, kind: KindId, capacity: usize) -> Self {
        let flags = ctl.state.flags.load(Ordering::Acquire);
        let pushed = ctl.tail.load(Ordering::Relaxed);
        let popped = ctl.head.load(Ordering::Relaxed);
        Self {
            kind,
            capacity,
            pushed,
            popped,
            len: pushed.saturating_sub(popped).min(capacity as u64),
            producers: ctl.state.producers.load(Ordering::Relaxed) & !GONE,
            consumers: ctl.state.consumers.load(Ordering::Relaxed) & !GONE,
            producers_gone: flags & PRODUCERS_GONE != 0,
            consumers_gone: flags & CONSUMERS_GONE != 0,
            poisoned: flags & POISONED != 0,
            dead_peer: (flags & PEER_DEAD != 0).then(|| ctl.state.dead_pid.load(Ordering::Relaxed)),
            producer: SideSnapshot::read(&ctl.producer_stats),
            consumer: SideSnapshot::read(&ctl.consumer_stats),
        }
    }
}
