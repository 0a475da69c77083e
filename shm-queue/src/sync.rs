//! The one place atomics come from, so the ring core can be model-checked by loom.
//!
//! Under `--cfg loom` these are loom's instrumented types; otherwise std's. The ring core names
//! `std::sync::atomic` nowhere else (`scripts/lint.sh` checks; the header's publication word and
//! the process-wide spin sampler are std's on purpose: loom never models them).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A busy-wait hint; under loom a yield so the model checker can schedule the other thread.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
