//! Process plumbing around `fork`: parent-death signals, signal dispositions, `_exit`.

use std::io::Write;

use crate::error::RuntimeError;

/// Forks. The caller must be single-threaded (the runtime starts no threads; see the crate
/// docs): a fork copies only the calling thread, and locks held by others would stay held.
pub(crate) fn fork() -> Result<libc::pid_t, RuntimeError> {
    // SAFETY: fork has no memory-safety preconditions of its own; the single-thread contract
    // above is what keeps the child's heap and stdio locks consistent.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(RuntimeError::os("fork"));
    }
    Ok(pid)
}

/// Linux's pids lie below this (`PID_MAX_LIMIT` on 64-bit).
pub(crate) const PID_LIMIT: u32 = 1 << 22;

/// In a fresh child: die with the parent. Sets PR_SET_PDEATHSIG, then re-checks the parent,
/// which may have died before the prctl (the well-known race); then it is already too late for
/// the signal, so exit now.
pub(crate) fn die_with_parent(expected_parent: libc::pid_t) {
    if !signal_parent_death(expected_parent, libc::SIGKILL) {
        exit_now(1);
    }
}

/// In a fresh child: have the kernel send `signal` when the parent dies. False if it has died
/// already (before the prctl: the well-known race), when the signal will never come.
pub(crate) fn signal_parent_death(expected_parent: libc::pid_t, signal: libc::c_int) -> bool {
    // SAFETY: prctl with these arguments only changes this process's death signal.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) };
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() == expected_parent }
}

/// Names this process for `ps`, `top` and `perf` (the kernel keeps the first 15 bytes).
pub(crate) fn set_name(name: &str) {
    let mut buf = [0u8; 16];
    let len = name.len().min(15);
    buf[..len].copy_from_slice(&name.as_bytes()[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes: `buf` is 16 bytes
    // and its last byte is always 0.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// Sets a signal's disposition to default or ignore.
pub(crate) fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: SIG_DFL and SIG_IGN are valid dispositions; no handler code runs.
    unsafe { libc::signal(signal, handler) };
}

/// Installs `handler` for `signal` without SA_RESTART, so a blocked futex wait returns EINTR.
/// Returns the disposition it replaced.
pub(crate) fn set_handler(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) -> libc::sigaction {
    // SAFETY: zeroed sigactions are valid; the handler only touches atomics and calls
    // async-signal-safe functions (each handler's own comment says which); `previous` is a
    // valid out-pointer.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        let mut previous: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        libc::sigaction(signal, &action, &mut previous);
        previous
    }
}

/// Puts back a disposition [`set_handler`] returned.
pub(crate) fn restore_disposition(signal: libc::c_int, previous: &libc::sigaction) {
    // SAFETY: `previous` is a disposition the kernel gave us for this signal.
    unsafe { libc::sigaction(signal, previous, std::ptr::null_mut()) };
}

/// Whether `signal` is ignored in this process (as `nohup` leaves SIGHUP, or a shell leaves
/// SIGINT for a background job): such a choice is the caller's, to keep.
pub(crate) fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: a null new action only reads the current one into a valid out-pointer.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}

/// [`set_handler`] for a handler that reads the signal's `siginfo_t` (SA_SIGINFO).
pub(crate) fn set_info_handler(
    signal: libc::c_int,
    handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
) {
    // SAFETY: as in `set_handler`; SA_SIGINFO makes the kernel call the three-argument form.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut action.sa_mask);
        // SA_NOCLDSTOP: a child stopped or continued (Ctrl-Z, a scheduler's suspend) has not
        // ended; a SIGCHLD for it would have the server treat a living stage as exiting.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_NOCLDSTOP;
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// Whether `child`, a child of this process not yet reaped, has ended (it is left to reap);
/// `true` if it is not, or no longer, a child of ours.
pub(crate) fn child_has_ended(child: libc::pid_t) -> bool {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-buffer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child to be reaped later.
        let rc = unsafe {
            libc::waitid(libc::P_PID, child as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
        };
        if rc == 0 {
            // SAFETY: waitid filled in `si_pid` (0 while the child runs).
            return unsafe { info.si_pid() } != 0;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return true;
        }
    }
}

/// Flushes stdio and leaves without running destructors or atexit handlers, which belong to
/// the process we were forked from.
pub(crate) fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Decodes a `waitpid` status.
pub(crate) fn decode_status(status: libc::c_int) -> crate::error::ExitStatus {
    if libc::WIFSIGNALED(status) {
        crate::error::ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        crate::error::ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}
