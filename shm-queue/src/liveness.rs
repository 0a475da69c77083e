//! Is a process still the one we recorded? Pid plus start time, read from `/proc`.
//!
//! A pid alone lies: it is reused. The kernel's start time (field 22 of `/proc/PID/stat`, in clock
//! ticks since boot) cannot be faked by another process and changes when a pid is reused. A zombie
//! (state `Z`) or a dying task (`X`) has released nothing we can use, but it will never push or
//! pop again, so it counts as dead; a stopped one (`T`, SIGSTOP) is alive.

use std::fs;
use std::io::{Read, Write};

/// Room for a `/proc/PID/stat` line: 52 numeric fields of at most 20 digits and a command
/// name of at most 64 bytes fit with room to spare.
const STAT_LINE_MAX: usize = 2048;

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

thread_local! {
    // (pid, start time) of this process, once known; a forked child finds a pid not its own.
    static CURRENT: std::cell::Cell<(u32, u64)> = const { std::cell::Cell::new((0, 0)) };
}

impl ProcessId {
    /// This process. Reads `/proc/self/stat` once per pid (so a forked child reads its own),
    /// unless [`set_current`](Self::set_current) told it first.
    pub fn current() -> Self {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        CURRENT.with(|cache| {
            let (cached_pid, start_time) = cache.get();
            if cached_pid == pid {
                return Self { pid, start_time };
            }
            let start_time = ProcessStatus::read(pid).map_or(0, |stat| stat.start_time);
            cache.set((pid, start_time));
            Self { pid, start_time }
        })
    }

    /// Tells this process who it is, when another process has already read its start time —
    /// typically the parent that forked it, right after the fork. The first `/proc` read in a
    /// fresh process costs tens of µs (most of it first-touch costs), which a short-lived
    /// process forked to do one job would otherwise pay on its way to its first queue.
    ///
    /// Ignored, returning `false`, unless `id.pid` is this process's pid. The start time is
    /// taken on trust: a wrong one makes this process's queue ends look dead to their peers.
    ///
    /// ```
    /// use shm_queue::ProcessId;
    /// let me = ProcessId::current();
    /// assert!(ProcessId::set_current(me));
    /// assert!(!ProcessId::set_current(ProcessId { pid: me.pid + 1, ..me }));
    /// assert_eq!(ProcessId::current(), me);
    /// ```
    pub fn set_current(id: ProcessId) -> bool {
        // SAFETY: getpid has no preconditions.
        if id.pid != unsafe { libc::getpid() } as u32 || id.start_time == 0 {
            return false;
        }
        CURRENT.with(|cache| cache.set((id.pid, id.start_time)));
        true
    }

    /// Checks `/proc/PID/stat`. Where `/proc` cannot be read at all (a sandbox that hides
    /// it), nobody's death can be told from a failed read, and every process counts as alive:
    /// dead peers then go unnoticed (the runtime's own parent-death signals still work), but
    /// no healthy queue is declared broken.
    pub fn liveness(&self) -> Liveness {
        match ProcessStatus::read(self.pid) {
            Some(stat) if stat.start_time == self.start_time && !stat.has_ended() => Liveness::Alive,
            Some(_) => Liveness::Dead,
            None if ProcessStatus::readable() => Liveness::Dead,
            None => Liveness::Alive,
        }
    }

    /// Shorthand for `liveness() == Alive`.
    pub fn is_alive(&self) -> bool {
        self.liveness() == Liveness::Alive
    }
}

/// A reading of the clock that `/proc/PID/stat` start times are on, taken right before a
/// `fork`, so that the parent knows its child's start time without reading `/proc`.
///
/// The kernel stamps a new process with `CLOCK_BOOTTIME` inside `fork` and shows it in clock
/// ticks (`sysconf(_SC_CLK_TCK)`, 100 a second). If the clock reads the same tick before and
/// after the fork, that tick is the child's start time; if a tick began in between (about one
/// fork in a hundred), [`child_start_time`](Self::child_start_time) reads `/proc` instead.
/// Reading `/proc/PID/stat` of a pid the kernel has not shown before costs ~25 µs (the lookup
/// makes the pid's directory and file), which a fork server would pay for every child.
///
/// The contract: the pid given to [`child_start_time`](Self::child_start_time) must be a child
/// this thread forked after [`before_fork`](Self::before_fork). For any other pid the answer is
/// wrong, not `None`, and a wrong start time makes a live process look dead. Like `/proc`,
/// the answer is on the clock of the caller's time namespace (`/proc` shows start times with
/// the reader's boot-time offset, as `clock_gettime` adds the caller's).
///
/// ```
/// use shm_queue::{ForkClock, ProcessStatus};
/// let clock = ForkClock::before_fork();
/// // SAFETY: the child only calls `_exit`.
/// let pid = unsafe { libc::fork() };
/// assert!(pid >= 0, "fork failed");
/// if pid == 0 {
///     // SAFETY: leaves the child at once, running nothing of the parent's.
///     unsafe { libc::_exit(0) };
/// }
/// let start_time = clock.child_start_time(pid as u32);
/// // Until it is reaped, the child's entry in /proc stays, zombie or not.
/// assert_eq!(start_time, ProcessStatus::read(pid as u32).map(|s| s.start_time));
/// // SAFETY: reaps our own child; a null status pointer is allowed.
/// unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ForkClock {
    before: Option<u64>,
}

impl ForkClock {
    /// Reads the clock. Call it right before `fork`.
    pub fn before_fork() -> Self {
        Self { before: boot_ticks() }
    }

    /// The start time of `pid`, a child this thread forked since
    /// [`before_fork`](Self::before_fork): the tick both readings agree on, or else `/proc`'s;
    /// `None` if `/proc` has no such process. Given any other pid, the answer is wrong.
    pub fn child_start_time(self, pid: u32) -> Option<u64> {
        match (self.before, boot_ticks()) {
            (Some(before), Some(after)) if before == after => Some(before),
            _ => ProcessStatus::read(pid).map(|status| status.start_time),
        }
    }
}

/// `CLOCK_BOOTTIME` in clock ticks, rounded down as the kernel converts a start time; `None`
/// where the kernel would convert differently (a tick rate that does not divide a second).
fn boot_ticks() -> Option<u64> {
    static NS_PER_TICK: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let ns_per_tick = (*NS_PER_TICK.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        (ticks > 0 && 1_000_000_000 % ticks == 0).then(|| 1_000_000_000 / ticks)
    }))?;
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write to.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    let ns =
        u64::try_from(now.tv_sec).ok()?.checked_mul(1_000_000_000)?.checked_add(u64::try_from(now.tv_nsec).ok()?)?;
    Some(ns / ns_per_tick)
}

/// What `/proc/PID/stat` says of a process, read without touching it (nothing is reaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStatus {
    /// The state letter: `R`, `S`, `D`, `T` (stopped), `Z` (zombie), `X` (dying), ...
    pub state: u8,
    /// The parent's pid.
    pub parent: u32,
    /// The process group's id.
    pub group: u32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

impl ProcessStatus {
    /// Whether this process can read `/proc/PID/stat` at all (its own; asked once). Where it
    /// cannot (a sandbox hiding `/proc`), a `None` from [`read`](Self::read) says nothing about
    /// the process asked for.
    ///
    /// ```
    /// assert!(shm_queue::ProcessStatus::readable());
    /// ```
    pub fn readable() -> bool {
        static READABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        // SAFETY: getpid has no preconditions.
        *READABLE.get_or_init(|| Self::read(unsafe { libc::getpid() } as u32).is_some())
    }

    /// Whether `pid` (a process or a thread) exists and has not ended (is not a zombie);
    /// `true` where `/proc` cannot be read at all (see [`readable`](Self::readable)): nothing
    /// is called gone that cannot be seen.
    ///
    /// ```
    /// assert!(shm_queue::ProcessStatus::is_running(std::process::id()));
    /// ```
    pub fn is_running(pid: u32) -> bool {
        match Self::read(pid) {
            Some(status) => !status.has_ended(),
            None => !Self::readable(),
        }
    }

    /// Reads `/proc/PID/stat`; `None` if there is no such process (or, see
    /// [`readable`](Self::readable), no `/proc`).
    ///
    /// Allocates nothing (the line is read into a buffer on the stack): the runtime's fork
    /// server calls this after every fork, when every heap page it writes is still shared with
    /// the new child and costs a copy-on-write fault.
    pub fn read(pid: u32) -> Option<Self> {
        let mut path = [0u8; 32];
        let path_len = {
            let mut cursor = &mut path[..];
            write!(cursor, "/proc/{pid}/stat").ok()?;
            32 - cursor.len()
        };
        let path = std::str::from_utf8(&path[..path_len]).ok()?;
        let mut file = fs::File::open(path).ok()?;
        let mut line = [0u8; STAT_LINE_MAX];
        let mut len = 0;
        loop {
            match file.read(&mut line[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
            if len == line.len() {
                // Longer than any line we know of: read it whole rather than misjudge it.
                return Self::parse(&fs::read(path).ok()?);
            }
        }
        Self::parse(&line[..len])
    }

    /// Parses a `/proc/PID/stat` line.
    fn parse(text: &[u8]) -> Option<Self> {
        // The command name (field 2) is in parentheses and may itself hold ") ": split at the
        // last.
        let close = text.iter().rposition(|&b| b == b')')?;
        let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?.as_bytes().first().copied()?;
        let parent = fields.next()?.parse().ok()?;
        let group = fields.next()?.parse().ok()?;
        // `rest` starts at field 3 (state); start time is field 22, 17 after the group.
        let start_time = fields.nth(16)?.parse().ok()?;
        Some(Self { state, parent, group, start_time })
    }

    /// Whether the process has finished (a zombie or dying): it will never act again.
    pub fn has_ended(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
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
    fn status_names_the_parent_and_the_start_time() {
        let me = ProcessId::current();
        let status = ProcessStatus::read(me.pid).unwrap();
        // SAFETY: getppid has no preconditions.
        assert_eq!(status.parent, unsafe { libc::getppid() } as u32);
        assert_eq!(status.start_time, me.start_time);
        assert!(!status.has_ended());
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_parses() {
        let line = b"42 (a) b (c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 50";
        let status = ProcessStatus::parse(line).unwrap();
        assert_eq!((status.state, status.parent, status.group, status.start_time), (b'S', 7, 42, 123456));
        assert!(ProcessStatus::parse(b"42 (no closing parenthesis S 7").is_none());
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
