//! Reading a segment by name without attaching an end: for operators and the runtime.

use std::sync::Arc;

use crate::attached::wake_everyone;
use crate::control::Control;
use crate::endpoint::{self, EndpointInfo};
use crate::error::OpenError;
use crate::header::HeaderInfo;
use crate::name::ShmName;
use crate::region::Region;
use crate::stats::QueueStats;

/// A segment mapped for inspection: header, statistics, endpoints. Attaches no end, so it
/// changes no count and closes nothing when dropped.
pub struct Inspector {
    region: Arc<Region>,
    control_offset: usize,
    info: HeaderInfo,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector").field("info", &self.info).finish_non_exhaustive()
    }
}

impl Inspector {
    /// Maps and validates `name` (any kind, any element type).
    ///
    /// # Errors
    /// Those of [`Queue::open`](crate::Queue::open) but the kind and type mismatches.
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::from_opened(crate::segment::open(&ShmName::new(name)?)?)
    }

    /// Like [`open`](Self::open), but without waiting for a creator that has not finished
    /// initialising the segment: such a segment is `NotInitialized` at once. For sweeps over many segments, where one left half-made by a creator
    /// that died would otherwise cost a second each.
    ///
    /// # Errors
    /// As for [`open`](Self::open).
    pub fn open_now(name: &str) -> Result<Self, OpenError> {
        Self::from_opened(crate::segment::open_within(&ShmName::new(name)?, std::time::Instant::now())?)
    }

    fn from_opened(opened: crate::segment::Opened) -> Result<Self, OpenError> {
        Ok(Self { region: Arc::new(opened.region), control_offset: opened.layout.control_offset, info: opened.info })
    }

    fn control(&self) -> &Control {
        // SAFETY: validated layout; the control block lies within the mapping we keep alive.
        unsafe { &*self.region.base().as_ptr().add(self.control_offset).cast::<Control>() }
    }

    /// The validated header.
    pub fn header(&self) -> &HeaderInfo {
        &self.info
    }

    /// Current counters.
    pub fn stats(&self) -> QueueStats {
        QueueStats::read(self.control(), self.info.kind, self.info.capacity)
    }

    /// The endpoint table, with each owner's liveness checked now (every owner counts as
    /// alive in a segment of [another PID namespace](Self::is_foreign), where it cannot be
    /// judged).
    pub fn endpoints(&self) -> Vec<EndpointInfo> {
        let mut endpoints = endpoint::list(self.control());
        if self.is_foreign() {
            for endpoint in &mut endpoints {
                endpoint.alive = true;
            }
        }
        endpoints
    }

    /// Whether the segment was made in another PID namespace than this process's (a container
    /// sharing `/dev/shm` but not its pids): its creator's and endpoints' pids name other
    /// processes here, or none, so nobody here can tell whether they live.
    /// [`Queue::open`](crate::Queue::open) refuses such a segment; an inspector shows it.
    pub fn is_foreign(&self) -> bool {
        crate::PidNamespace::is_foreign(self.info.pid_namespace)
    }

    /// Poisons the queue and wakes all its sleepers.
    pub fn poison(&self) {
        Self::poison_all(std::slice::from_ref(self));
    }

    /// Poisons every queue, then wakes every sleeper: nobody woken on one of them acts before
    /// all are poisoned. (Poisoned one by one, a process woken on the first could see it
    /// poisoned, give up and close its end of the next before that one is poisoned too; that
    /// queue's consumer would then find it merely closed, not broken.)
    ///
    /// ```
    /// use shm_queue::{Inspector, PopError, Queue, Spsc};
    /// let names = [0, 1].map(|i| format!("/shmpipe-doc-poison-all-{}-{i}", std::process::id()));
    /// let queues = names.clone().map(|n| Queue::<u64, Spsc>::create(&n, 8).unwrap());
    /// let mut consumer = queues[1].consumer()?;
    /// let inspectors: Vec<Inspector> = names.iter().map(|n| Inspector::open(n)).collect::<Result<_, _>>()?;
    /// Inspector::poison_all(&inspectors);
    /// assert_eq!(consumer.try_pop(), Err(PopError::Poisoned));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poison_all(queues: &[Inspector]) {
        for queue in queues {
            endpoint::poison(queue.control(), None);
        }
        for queue in queues {
            wake_everyone(queue.control());
        }
    }

    /// Whether nothing can use this segment any more: its creator and every recorded endpoint
    /// owner are dead (a handed-over end counts as alive while its last owner is). For a
    /// segment of [another PID namespace](Self::is_foreign), whose pids cannot be judged here,
    /// only when that whole namespace [is gone](crate::PidNamespace::is_gone).
    pub fn is_stale(&self) -> bool {
        if self.is_foreign() {
            return crate::PidNamespace::is_gone(self.info.pid_namespace);
        }
        !self.info.creator.is_alive() && self.endpoints().iter().all(|e| !e.alive)
    }
}
