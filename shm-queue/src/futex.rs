//! The only system call of the blocking path: a *shared* futex on a word in a segment.
//!
//! Public so that code building on shared memory (the runtime's join) sleeps the same way.
//!
//! Not `FUTEX_PRIVATE_FLAG`: a private futex is keyed by (mm, address) and cannot be woken from
//! another process; a shared one is keyed by the backing page, which every mapping shares.

use std::time::Duration;

use crate::sync::AtomicU32;

/// Sleeps while `*word == expected`, at most `timeout`. Returns on wake, timeout, signal or
/// value change; the caller re-checks its condition either way. Returns `true` when a signal
/// interrupted the sleep (EINTR), a hint that something changed elsewhere (a child died, ...).
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// let word = AtomicU32::new(1);
/// // The value differs from `expected`: returns at once.
/// shm_queue::futex::wait(&word, 0, std::time::Duration::from_secs(5));
/// ```
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> bool {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call (AtomicU32 has u32's
    // layout); FUTEX_WAIT only reads it. The timespec lives on our stack.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const AtomicU32,
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
}

/// Wakes every process sleeping on `word` (a no-op when none is).
pub fn wake_all(word: &AtomicU32) {
    // SAFETY: as above; FUTEX_WAKE does not touch the word's memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word as *const AtomicU32, libc::FUTEX_WAKE, i32::MAX);
    }
}
