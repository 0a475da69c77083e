//! What both ends share: the ring, their slot in the endpoint table, and detaching on drop
//! (poisoning first when the drop comes from a panic).

use std::sync::Arc;
use std::time::Duration;

use crate::control::{Control, PEER_DEAD, POISONED};
use crate::endpoint::{self, Role};
use crate::ring::RawRing;
use crate::stats::QueueStats;
use crate::sync::Ordering;
use crate::wait;
use crate::wake::WakePolicy;

/// A token for passing an end to another process: the receiver adopts the sender's slot, so the
/// queue never looks closed in between. Plain data: it can travel in a spawn request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Handover {
    /// The endpoint slot being handed over.
    pub slot: u32,
    /// `1` producer, `2` consumer.
    pub role: u32,
}

pub(crate) struct Attached<T> {
    pub ring: RawRing<T>,
    pub slot: u32,
    pub role: Role,
    pub wake: WakePolicy,
    pub recheck: Duration,
    pub name: Option<Arc<str>>,
    /// Cleared when the slot was handed over: drop must then leave it alone.
    pub detach_on_drop: bool,
}

impl<T> Attached<T> {
    pub fn control(&self) -> &Control {
        self.ring.control()
    }

    /// The error to report for a poisoned queue: the dead peer's pid when there is one.
    pub fn poison_cause(&self) -> Option<u32> {
        let state = &self.control().state;
        if state.flags.load(Ordering::Acquire) & PEER_DEAD != 0 {
            Some(state.dead_pid.load(Ordering::Relaxed))
        } else {
            None
        }
    }

    /// Looks for a dead end of `peers` now, poisoning the queue if one is found (as a waiting
    /// call does at each re-check), then says whether the queue is broken: `Some(cause)`, with
    /// the dead peer's pid when that is why.
    pub fn check_peers(&self, peers: Role) -> Option<Option<u32>> {
        let ctl = self.control();
        endpoint::reap_dead(ctl, peers);
        (ctl.state.flags.load(Ordering::Acquire) & POISONED != 0).then(|| self.poison_cause())
    }

    pub fn poison(&self) {
        let ctl = self.control();
        endpoint::poison(ctl, None);
        wake_everyone(ctl);
    }

    pub fn hand_over(mut self) -> Handover {
        // Refused for a copy inherited through fork: its token then adopts nothing
        // (`NoPendingHandover`), and the owner's end is untouched.
        endpoint::hand_over(self.control(), self.slot);
        self.detach_on_drop = false;
        Handover { slot: self.slot, role: self.role as u32 }
    }

    pub fn stats(&self) -> QueueStats {
        QueueStats::read(self.control(), self.ring.kind(), self.ring.capacity())
    }
}

/// What both ends share, written once: `Debug`, the accessors, handing over, and attaching
/// another end of the same role (kinds that allow several only).
macro_rules! shared_end_api {
    ($end:ident, $adopt:literal, $multi:path, $role:expr) => {
        impl<T: Pod, K: Kind> fmt::Debug for $end<T, K> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("kind", &K::ID)
                    .field("name", &self.end.name)
                    .field("slot", &self.end.slot)
                    .finish_non_exhaustive()
            }
        }

        impl<T: Pod, K: Kind> $end<T, K> {
            /// Slots in the ring.
            pub fn capacity(&self) -> usize {
                self.end.ring.capacity()
            }

            /// The segment's name, or `None` for a heap-backed queue.
            pub fn name(&self) -> Option<&str> {
                self.end.name.as_deref()
            }

            /// A snapshot of the queue's counters.
            pub fn stats(&self) -> QueueStats {
                self.end.stats()
            }

            /// Marks the queue broken and wakes every sleeper; every end then fails with
            /// `Poisoned`.
            pub fn poison(&self) {
                self.end.poison();
            }

            #[doc = concat!("Gives this end up for another process to [`", $adopt, "`](crate::Queue::", $adopt, ").")]
            /// The queue stays open in between: the handed-over end still counts as attached.
            /// So every token must be adopted (and the end dropped, if unwanted): one that
            /// nobody adopts keeps the queue open on that side for good, and the other side
            /// waits for ever, as no dead owner can be found (the giver may well exit first).
            /// Only the process that attached (or adopted) the end can give it up: called on a
            /// copy inherited through `fork`, it hands over nothing, and adopting the token
            /// fails with `NoPendingHandover`.
            pub fn into_handover(self) -> Handover {
                self.end.hand_over()
            }
        }

        impl<T: Pod, K: $multi> $end<T, K> {
            /// Attaches another end of the same role to the same queue (kinds that allow
            /// several only).
            ///
            /// # Errors
            /// When the endpoint table is full or the queue is poisoned or closed.
            pub fn try_clone(&self) -> Result<Self, crate::AttachError> {
                let slot = crate::endpoint::attach(self.end.control(), K::ID, $role)?;
                Ok(Self::new(Attached {
                    ring: self.end.ring.clone(),
                    slot,
                    role: $role,
                    wake: self.end.wake,
                    recheck: self.end.recheck,
                    name: self.end.name.clone(),
                    detach_on_drop: true,
                }))
            }
        }
    };
}
pub(crate) use shared_end_api;

/// Wakes all sleepers on both sides, so they re-check flags (close, poison).
pub(crate) fn wake_everyone(ctl: &Control) {
    if wait::anyone_sleeping(&ctl.not_empty) {
        wait::wake_all(&ctl.not_empty, &ctl.producer_stats);
    }
    if wait::anyone_sleeping(&ctl.not_full) {
        wait::wake_all(&ctl.not_full, &ctl.consumer_stats);
    }
}

impl<T> Drop for Attached<T> {
    fn drop(&mut self) {
        if !self.detach_on_drop {
            return;
        }
        let ctl = self.ring.control();
        // A copy inherited through fork is not the owner: counting it out would close the
        // queue under the real owner's feet.
        if !endpoint::owned_by_me(ctl, self.slot) {
            return;
        }
        // An end dropped while its thread unwinds from a panic did not finish its work: the
        // other side must not take a cut-short stream for a complete one (`Disconnected`), so
        // the queue is poisoned first, as a `Mutex` is.
        let unfinished = std::thread::panicking();
        if unfinished {
            endpoint::poison(ctl, None);
        }
        if endpoint::detach(ctl, self.slot, self.role) || unfinished {
            wake_everyone(ctl);
        }
    }
}
