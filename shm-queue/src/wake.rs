//! When a side that published wakes the other side's sleepers.

/// How eagerly the side that just published wakes a sleeping peer.
///
/// A futex wake across CPUs costs ~18 µs on our machines, far more than a push; when processes
/// outnumber cores, waking a peer on every item turns a pipeline into a context-switch storm.
/// `Batched` lets the ring fill (or drain) before waking, trading latency for throughput.
/// Producers that stop to wait on something else must call `flush` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WakePolicy {
    /// After every publish, wake the other side if anyone sleeps (the default).
    #[default]
    Eager,
    /// Wake a sleeping consumer only once the ring holds `consumer_at` items (or on `flush`,
    /// close or poison); wake a sleeping producer only once it drains to `producer_at` items.
    Batched {
        /// Fill at or above which a sleeping consumer is woken (`1..=capacity`).
        consumer_at: u32,
        /// Fill at or below which a sleeping producer is woken (`0..capacity`).
        producer_at: u32,
    },
}

impl WakePolicy {
    /// Batched with thresholds at the ring's edges: wake consumers when full, producers when
    /// empty. The best throughput when processes outnumber cores.
    pub fn at_edges(capacity: usize) -> Self {
        Self::Batched { consumer_at: capacity as u32, producer_at: 0 }
    }

    pub(crate) fn encode(self) -> (u32, u32, u32) {
        match self {
            Self::Eager => (0, 1, u32::MAX),
            Self::Batched { consumer_at, producer_at } => (1, consumer_at, producer_at),
        }
    }

    pub(crate) fn decode(policy: u32, consumer_at: u32, producer_at: u32, capacity: usize) -> Option<Self> {
        match policy {
            0 => Some(Self::Eager),
            1 if consumer_at >= 1 && consumer_at as usize <= capacity && (producer_at as usize) < capacity => {
                Some(Self::Batched { consumer_at, producer_at })
            }
            _ => None,
        }
    }

    /// Fill at or above which a sleeping consumer is woken.
    pub(crate) fn consumer_threshold(self) -> u64 {
        match self {
            Self::Eager => 1,
            Self::Batched { consumer_at, .. } => u64::from(consumer_at),
        }
    }

    /// Fill at or below which a sleeping producer is woken.
    pub(crate) fn producer_threshold(self, capacity: u64) -> u64 {
        match self {
            Self::Eager => capacity,
            Self::Batched { producer_at, .. } => u64::from(producer_at),
        }
    }
}
