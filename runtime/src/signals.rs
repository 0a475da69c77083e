//! SIGINT, SIGTERM, SIGHUP, SIGQUIT in the root: record the interruption in the run table and
//! tell the fork server, which poisons every queue (waking everyone) and kills every stage. The
//! root's own blocked calls then fail, and its code ends the run with status 128 + signal. A
//! signal the caller ignores (`nohup`, a background job) stays ignored; every disposition is
//! put back when the run ends.

use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use crate::process;
use crate::table::{exit_kind, RunHeader, Table};

static SERVER: AtomicI32 = AtomicI32::new(0);
static HEADER: AtomicPtr<RunHeader> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_signal(signal: libc::c_int) {
    // The interrupted code may be about to read errno, which the calls below can change.
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
    let saved_errno = unsafe { *libc::__errno_location() };
    interrupt(signal);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

fn interrupt(signal: libc::c_int) {
    // Async-signal-safe only: atomics on the shared table, futex wake, kill.
    let header = HEADER.load(Ordering::SeqCst);
    if !header.is_null() {
        // SAFETY: the table stays mapped until `uninstall` clears this pointer, which happens
        // before the table is dropped.
        let header = unsafe { &*header };
        if header
            .failure_kind
            .compare_exchange(exit_kind::NONE, exit_kind::CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            header.failure_value.store(signal, Ordering::Relaxed);
            header.failure_kind.store(exit_kind::INTERRUPTED, Ordering::Release);
            crate::table::bump(&header.event, &header.event_waiters);
        }
    }
    let server = SERVER.load(Ordering::SeqCst);
    if server > 0 {
        // SAFETY: kill is async-signal-safe; the server is our unreaped child until uninstall.
        unsafe { libc::kill(server, libc::SIGTERM) };
    }
}

extern "C" fn on_sigchld(_: libc::c_int) {
    // Nothing: its only purpose is to interrupt the root's futex sleeps (no SA_RESTART), so
    // that a queue end asleep in the root looks for dead peers when a process of the run (the
    // fork server, or an orphaned stage) dies, instead of at its next periodic re-check.
}

/// The signals that interrupt a run. The terminal sends the first, the third and the fourth
/// to the whole process group, which the server and the stages ignore: the root acts for all.
const INTERRUPTING: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The root's dispositions from before the run, to put back when it ends.
pub(crate) struct Installed {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

pub(crate) fn install(server: libc::pid_t, table: &Table) -> Installed {
    HEADER.store(table.header() as *const RunHeader as *mut RunHeader, Ordering::SeqCst);
    SERVER.store(server, Ordering::SeqCst);
    let mut previous: Vec<_> = INTERRUPTING
        .into_iter()
        .filter(|&signal| !process::is_ignored(signal))
        .map(|signal| (signal, process::set_handler(signal, on_signal)))
        .collect();
    previous.push((libc::SIGCHLD, process::set_handler(libc::SIGCHLD, on_sigchld)));
    Installed { previous }
}

/// Stops the handlers from signalling the server: it has ended (and is about to be reaped).
pub(crate) fn forget_server() {
    SERVER.store(0, Ordering::SeqCst);
}

/// Puts the root's dispositions back (once; later calls do nothing) and forgets the run.
pub(crate) fn uninstall(installed: &mut Installed) {
    for (signal, previous) in installed.previous.drain(..) {
        process::restore_disposition(signal, &previous);
    }
    SERVER.store(0, Ordering::SeqCst);
    HEADER.store(std::ptr::null_mut(), Ordering::SeqCst);
}
