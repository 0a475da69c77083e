//! Which PID namespace a process is in: a pid means something only inside its namespace.
//!
//! Liveness ([`ProcessId`](crate::ProcessId)) looks pids up in `/proc`, which shows the
//! reader's own namespace. Two containers that share `/dev/shm` but not their PID namespace
//! (Docker's `--ipc=host` or `--ipc=container:…` without the same `--pid`) would read each
//! other's pids as dead, or as some unrelated process: a sleeper would declare a healthy queue
//! broken, and a cleaner would remove the segments of a live run. So a segment records its
//! creator's namespace, only processes of that namespace may open it as a queue, and no pid
//! recorded in another namespace is judged by its number.
//!
//! What can be judged from outside is the namespace as a whole: from the initial PID namespace
//! (the host's), which sees every process on the machine, a namespace none of them is in has
//! ended, and so has everything it recorded — a container killed outright leaves its segments
//! for the host to remove ([`PidNamespace::is_gone`]).

use std::cell::Cell;
use std::os::unix::fs::MetadataExt;

/// The initial PID namespace's inode number (the kernel's `PROC_PID_INIT_INO`).
const INITIAL: u64 = 0xEFFF_FFFC;

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
    /// first. (Once per pid: a process that is pid 1 of its namespace and then forks into a
    /// new one, after `unshare(CLONE_NEWPID)`, has a first child that is pid 1 again and must
    /// be told.)
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

    /// Whether this process is in the initial PID namespace, whose `/proc` shows every process
    /// on the machine: only from there can [`is_gone`](Self::is_gone) say yes.
    pub fn sees_every_namespace() -> bool {
        Self::current().is_some_and(|here| here.0 == INITIAL)
    }

    /// Whether namespace `recorded` (as [`as_raw`](Self::as_raw) gives it) certainly has no
    /// process left, so that nothing it recorded can act again: a container that was killed
    /// outright. Told only from the [initial namespace](Self::sees_every_namespace), by
    /// looking for a process in it, and only when every process's namespace can be read
    /// (another user's, or a more privileged one's, cannot be but by root with
    /// `CAP_SYS_PTRACE`). `false` whenever that cannot be known, and
    /// for 0 (unknown) and this process's own namespace. A namespace with no process left
    /// cannot get one again. Reads `/proc/PID/ns/pid` of every process: for sweeps, not for
    /// hot paths.
    ///
    /// ```
    /// use shm_queue::PidNamespace;
    /// let here = PidNamespace::current().unwrap().as_raw();
    /// assert!(!PidNamespace::is_gone(here));
    /// assert!(!PidNamespace::is_gone(0));
    /// // Namespace numbers are 32-bit: this one never had a process, which only the host's
    /// // namespace can tell.
    /// if !PidNamespace::sees_every_namespace() {
    ///     assert!(!PidNamespace::is_gone(1 << 40));
    /// }
    /// ```
    pub fn is_gone(recorded: u64) -> bool {
        if recorded == 0 || !Self::sees_every_namespace() || !Self::is_foreign(recorded) {
            return false;
        }
        let Ok(processes) = std::fs::read_dir("/proc") else { return false };
        for process in processes {
            let Ok(process) = process else { return false };
            let name = process.file_name();
            // Pid 1 is this namespace's own init, whatever it lets us read (a sandbox's init
            // with more privilege than ours may not let even root read its links).
            if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) || name == "1" {
                continue;
            }
            match std::fs::metadata(process.path().join("ns/pid")) {
                // A zombie (a killed container's init, waiting for its parent) acts no more.
                Ok(link) if link.ino() == recorded => {
                    let pid = name.to_str().and_then(|n| n.parse().ok());
                    if !pid.and_then(crate::ProcessStatus::read).is_some_and(|s| s.has_ended()) {
                        return false;
                    }
                }
                Ok(_) => {}
                // Ended while we looked (or a zombie, past its namespaces).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Someone we may not look at: it could be in that namespace.
                Err(_) => return false,
            }
        }
        true
    }
}

/// [`PidNamespace::is_gone`], asked once per namespace: for a sweep over many segments, where
/// each answer would otherwise be another look through all of `/proc`.
///
/// ```
/// use shm_queue::{GoneNamespaces, PidNamespace};
/// let mut gone = GoneNamespaces::default();
/// let here = PidNamespace::current().unwrap().as_raw();
/// assert!(!gone.is_gone(here));
/// assert_eq!(gone.is_gone(1 << 40), PidNamespace::is_gone(1 << 40));
/// ```
#[derive(Debug, Default)]
pub struct GoneNamespaces(std::collections::HashMap<u64, bool>);

impl GoneNamespaces {
    /// [`PidNamespace::is_gone`] for `recorded`, from memory after the first time.
    pub fn is_gone(&mut self, recorded: u64) -> bool {
        *self.0.entry(recorded).or_insert_with(|| PidNamespace::is_gone(recorded))
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
