//! Which PID namespace a process is in: a pid means something only inside its namespace.
//!
//! Liveness ([`ProcessId`](crate::ProcessId)) looks pids up in `/proc`, which shows the
//! reader's own namespace. Two containers that share `/dev/shm` but not their PID namespace
//! (Docker's `--ipc=host` or `--ipc=container:…` without the same `--pid`) would read each
//! other's pids as dead, or as some unrelated process: a sleeper would declare a healthy queue
//! broken, and a cleaner would remove the segments of a live run. So a segment records its
//! creator's namespace, only processes of that namespace may open it as a queue, and nothing
//! judges a pid recorded in another namespace.

use std::cell::Cell;
use std::os::unix::fs::MetadataExt;

/// A PID namespace, known by the inode number of its `/proc/PID/ns/pid` link (what `lsns`
/// and `readlink /proc/self/ns/pid` show as `pid:[N]`).
///
/// ```
/// use shm_queue::PidNamespace;
/// let here = PidNamespace::current().expect("/proc is mounted");
/// assert_eq!(PidNamespace::from_raw(here.as_raw()), Some(here));
/// // 0 is what a segment records when its creator could not tell.
/// assert_eq!(PidNamespace::from_raw(0), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PidNamespace(u64);

thread_local! {
    // (pid, namespace) of this process once known: a forked child finds a pid not its own.
    static CURRENT: Cell<(u32, u64)> = const { Cell::new((0, 0)) };
}

impl PidNamespace {
    /// The namespace of this process, or `None` where `/proc` cannot tell (not mounted, or
    /// hidden). Looked up once per process unless [`set_current`](Self::set_current) told it
    /// first.
    pub fn current() -> Option<Self> {
        let pid = std::process::id();
        let (cached_pid, raw) = CURRENT.with(Cell::get);
        if cached_pid == pid {
            return Self::from_raw(raw);
        }
        let raw = std::fs::metadata("/proc/self/ns/pid").map_or(0, |link| link.ino());
        CURRENT.with(|cache| cache.set((pid, raw)));
        Self::from_raw(raw)
    }

    /// Tells a process forked a moment ago which namespace it is in, sparing it the `/proc`
    /// lookup (the first in a fresh process costs tens of µs). A child is in the namespace of
    /// the process that forked it, unless that process moved its children elsewhere
    /// (`unshare(CLONE_NEWPID)`, `setns`): call this only from a child whose parent did
    /// neither, with the parent's [`current`](Self::current).
    ///
    /// ```
    /// use shm_queue::PidNamespace;
    /// let here = PidNamespace::current().unwrap();
    /// PidNamespace::set_current(here);
    /// assert_eq!(PidNamespace::current(), Some(here));
    /// ```
    pub fn set_current(namespace: Self) {
        CURRENT.with(|cache| cache.set((std::process::id(), namespace.0)));
    }

    /// The namespace a segment or a name recorded, or `None` for 0 (its recorder could not
    /// tell).
    pub fn from_raw(raw: u64) -> Option<Self> {
        (raw != 0).then_some(Self(raw))
    }

    /// The number to record: the namespace's inode number.
    pub fn as_raw(self) -> u64 {
        self.0
    }

    /// The number to record for this process: 0 where `/proc` cannot tell.
    pub(crate) fn current_raw() -> u64 {
        Self::current().map_or(0, Self::as_raw)
    }

    /// Whether pids recorded by a process of namespace `recorded` (as [`as_raw`](Self::as_raw)
    /// gives it, 0 for unknown) name other processes than they do here. `false` when either
    /// side is unknown: without `/proc`, liveness counts everyone alive anyway.
    ///
    /// ```
    /// use shm_queue::PidNamespace;
    /// let here = PidNamespace::current().unwrap();
    /// assert!(!PidNamespace::is_foreign(here.as_raw()));
    /// assert!(!PidNamespace::is_foreign(0));
    /// assert!(PidNamespace::is_foreign(here.as_raw() + 1));
    /// ```
    pub fn is_foreign(recorded: u64) -> bool {
        match (Self::from_raw(recorded), Self::current()) {
            (Some(recorded), Some(here)) => recorded != here,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_the_inode_readlink_names() {
        let link = std::fs::read_link("/proc/self/ns/pid").unwrap();
        let here = PidNamespace::current().unwrap();
        assert_eq!(link.to_str().unwrap(), format!("pid:[{}]", here.as_raw()));
    }
}
