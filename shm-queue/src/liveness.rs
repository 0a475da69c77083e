//! Is a process still the one we recorded? Pid plus start time, read from `/proc`.
//!
//! A pid alone lies: it is reused. The kernel's start time (field 22 of `/proc/PID/stat`, in clock
//! ticks since boot) cannot be faked by another process and changes when a pid is reused. A zombie
//! (state `Z`) or a dying task (`X`) has released nothing we can use, but it will never push or
//! pop again, so it counts as dead; a stopped one (`T`, SIGSTOP) is alive.

use std::fs;

/// The identity of a process: pid and kernel start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks since boot, from `/proc/PID/stat`.
    pub start_time: u64,
}

/// What `/proc` says about a recorded process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Running, sleeping or stopped: it may still act.
    Alive,
    /// Gone, a zombie, or its pid now belongs to another process.
    Dead,
}

impl ProcessId {
    /// This process. Reads `/proc/self/stat` once per pid (so a forked child reads its own).
    pub fn current() -> Self {
        thread_local! {
            // (pid, start time) of the last lookup; a forked child finds a pid not its own.
            static CACHE: std::cell::Cell<(u32, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        CACHE.with(|cache| {
            let (cached_pid, start_time) = cache.get();
            if cached_pid == pid {
                return Self { pid, start_time };
            }
            let start_time = read_stat(pid).map_or(0, |stat| stat.start_time);
            cache.set((pid, start_time));
            Self { pid, start_time }
        })
    }

    /// Checks `/proc/PID/stat`.
    pub fn liveness(&self) -> Liveness {
        match read_stat(self.pid) {
            Some(stat) if stat.start_time == self.start_time && !matches!(stat.state, b'Z' | b'X' | b'x') => {
                Liveness::Alive
            }
            _ => Liveness::Dead,
        }
    }

    /// Shorthand for `liveness() == Alive`.
    pub fn is_alive(&self) -> bool {
        self.liveness() == Liveness::Alive
    }
}

struct Stat {
    state: u8,
    start_time: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold ") ": split at the last.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.as_bytes().first().copied()?;
    // `rest` starts at field 3 (state); start time is field 22, 19 further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_has_a_start_time() {
        let me = ProcessId::current();
        assert!(me.start_time > 0);
        assert!(me.is_alive());
    }

    #[test]
    fn a_reused_pid_is_not_the_old_process() {
        let me = ProcessId::current();
        let impostor = ProcessId { pid: me.pid, start_time: me.start_time + 1 };
        assert_eq!(impostor.liveness(), Liveness::Dead);
    }

    #[test]
    fn a_missing_pid_is_dead() {
        // Above the kernel's pid_max limit (2^22), so never a live pid.
        let ghost = ProcessId { pid: (1 << 22) + 1, start_time: 1 };
        assert_eq!(ghost.liveness(), Liveness::Dead);
    }
}
