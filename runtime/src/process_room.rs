//! How many more processes can start now: the limits a `fork` meets, read before a run starts.

use std::fmt;
use std::path::PathBuf;

use crate::cgroup::{read_number, Cgroup};

/// The room [`process_room`] found, and the limit that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRoom {
    /// How many more processes can start now, at most.
    pub processes: u64,
    /// The limit that leaves the least room.
    pub limit: ProcessLimit,
}

/// A limit on how many processes can exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessLimit {
    /// `/proc/sys/kernel/pid_max`: the machine's pids.
    PidMax,
    /// `/proc/sys/kernel/threads-max`: the machine's tasks.
    ThreadsMax,
    /// `pids.max` of this pids cgroup (the directory), or of one above it.
    Cgroup(PathBuf),
    /// `RLIMIT_NPROC` (`ulimit -u`): this user's tasks.
    UserLimit,
}

impl fmt::Display for ProcessLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PidMax => f.write_str("kernel.pid_max"),
            Self::ThreadsMax => f.write_str("kernel.threads-max"),
            Self::Cgroup(dir) => write!(f, "pids.max of the cgroup {}", dir.display()),
            Self::UserLimit => f.write_str("ulimit -u"),
        }
    }
}

/// How many more processes this process could start now, with the limit that leaves the least
/// room; `None` when no limit can be read.
///
/// A run keeps every stage alive until it ends, so a run that needs more processes than the
/// kernel will make fails part-way, after taking every free pid from the rest of the machine.
/// This reads the limits a `fork` meets, to refuse such a run before it starts:
///
/// - `kernel.threads-max` against the tasks (processes and threads) that exist, and
///   `kernel.pid_max` against the same: every task has a pid, in every PID namespace up to the
///   host's. From Linux 6.14 a PID namespace can have a `pid_max` of its own, which the tasks of
///   the whole machine say nothing about; so outside the host's namespace `pid_max` is read only
///   from older kernels;
/// - the pids cgroup's `pids.max` against its `pids.current`, at every level up to the mount
///   (a container's `--pids-limit`, a systemd unit's `TasksMax`, a batch job's), v1 or v2;
/// - `RLIMIT_NPROC` against the tasks of this real user, except where the kernel does not hold
///   a process to it (root, or `CAP_SYS_ADMIN` or `CAP_SYS_RESOURCE`). The user's tasks are
///   counted (a walk over `/proc`) only when the limit could bind.
///
/// Each is read as an upper bound on the room (pids below 300 are not reused, tasks come and go),
/// so a run refused on it certainly could not have started; a moment when many threads exist
/// elsewhere can refuse a run that would have fitted a second later.
///
/// ```
/// // Some room, or no limit that can be read.
/// if let Some(room) = runtime::process_room() {
///     assert!(room.processes < u64::MAX);
///     println!("{} more processes ({})", room.processes, room.limit);
/// }
/// ```
pub fn process_room() -> Option<ProcessRoom> {
    let tasks = std::fs::read_to_string("/proc/loadavg").ok().and_then(|text| tasks_in_loadavg(&text));
    let system = |file: &str, limit: ProcessLimit| {
        let max = read_number(std::path::Path::new(file))?;
        Some(ProcessRoom { processes: max.saturating_sub(tasks?), limit })
    };
    let pid_max_is_global = shm_queue::PidNamespace::sees_every_namespace() || kernel_before(6, 14);
    let others = [
        pid_max_is_global.then(|| system("/proc/sys/kernel/pid_max", ProcessLimit::PidMax)).flatten(),
        system("/proc/sys/kernel/threads-max", ProcessLimit::ThreadsMax),
        Cgroup::of_this_process("pids").and_then(|place| cgroup_room(&place)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|room| room.processes);
    let least_so_far = others.as_ref().map_or(u64::MAX, |room| room.processes);
    match user_room(tasks, least_so_far) {
        Some(user) if user.processes < least_so_far => Some(user),
        _ => others,
    }
}

/// Whether the running kernel is older than `major.minor` (`false` if `uname` says otherwise
/// or cannot be read).
fn kernel_before(major: u32, minor: u32) -> bool {
    // SAFETY: an all-zero utsname is a valid out-parameter.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a valid out-pointer.
    if unsafe { libc::uname(&mut name) } != 0 {
        return false;
    }
    // SAFETY: uname NUL-terminates `release`.
    let release = unsafe { std::ffi::CStr::from_ptr(name.release.as_ptr()) };
    release.to_str().ok().and_then(version_of).is_some_and(|version| version < (major, minor))
}

/// `(major, minor)` of a kernel release such as `6.1.0-18-amd64`.
fn version_of(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The tasks that exist, from `/proc/loadavg` (`0.20 0.18 0.12 1/80 11206`: running/existing).
fn tasks_in_loadavg(text: &str) -> Option<u64> {
    text.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

/// The least `pids.max - pids.current` over the cgroup's levels that set a limit.
fn cgroup_room(place: &Cgroup) -> Option<ProcessRoom> {
    place
        .levels()
        .filter_map(|level| {
            // "max" (no limit) does not parse, and a level without the controller has no file.
            let max = read_number(&level.join("pids.max"))?;
            let current = read_number(&level.join("pids.current"))?;
            Some(ProcessRoom { processes: max.saturating_sub(current), limit: ProcessLimit::Cgroup(level.to_owned()) })
        })
        .min_by_key(|room| room.processes)
}

/// `RLIMIT_NPROC` less the tasks of this real user; `None` where the kernel does not hold this
/// process to it, without a limit, or when it leaves at least `least_so_far` whatever the user
/// runs (`tasks`, those of every user, bound the user's): then `/proc` is not walked.
fn user_room(tasks: Option<u64>, least_so_far: u64) -> Option<ProcessRoom> {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    if uid == 0 || exempt_from_nproc(&std::fs::read_to_string("/proc/self/status").unwrap_or_default()) {
        return None;
    }
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    if tasks.is_some_and(|tasks| limit.rlim_cur.saturating_sub(tasks) >= least_so_far) {
        return None;
    }
    Some(ProcessRoom { processes: limit.rlim_cur.saturating_sub(tasks_of_user(uid)), limit: ProcessLimit::UserLimit })
}

/// Whether a `/proc/PID/status` shows `CAP_SYS_ADMIN` or `CAP_SYS_RESOURCE` in effect, with
/// which the kernel lets a process fork past `RLIMIT_NPROC`.
fn exempt_from_nproc(status: &str) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_RESOURCE: u32 = 24;
    let effective = status.lines().find_map(|line| line.strip_prefix("CapEff:")).map(str::trim);
    effective
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE) != 0)
}

/// The tasks (threads included) of processes whose real user is `uid`, as far as `/proc`
/// shows them (fewer where it hides other processes: the room then reads larger, never
/// smaller).
fn tasks_of_user(uid: libc::uid_t) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(|name| name.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("status")).ok())
        .filter_map(|status| threads_of(&status, uid))
        .sum()
}

/// `Threads:` of a `/proc/PID/status` whose real `Uid:` is `uid`.
fn threads_of(status: &str, uid: libc::uid_t) -> Option<u64> {
    let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim_start);
    let real: libc::uid_t = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
    (real == uid).then(|| field("Threads:")?.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupVersion;

    #[test]
    fn reads_the_tasks_that_exist_from_loadavg() {
        assert_eq!(tasks_in_loadavg("0.20 0.18 0.12 1/80 11206\n"), Some(80));
        assert_eq!(tasks_in_loadavg("0.20 0.18 0.12\n"), None);
    }

    #[test]
    fn reads_the_kernel_version_and_the_capabilities_that_exempt() {
        assert_eq!(version_of("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(version_of("6.14.2"), Some((6, 14)));
        assert_eq!(version_of("5.15.0-1057-azure"), Some((5, 15)));
        assert_eq!(version_of("weird"), None);
        assert!(exempt_from_nproc("CapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n"));
        assert!(exempt_from_nproc("CapEff:\t0000000001000000\n"), "CAP_SYS_RESOURCE");
        assert!(exempt_from_nproc("CapEff:\t0000000000200000\n"), "CAP_SYS_ADMIN");
        assert!(!exempt_from_nproc("CapEff:\t0000000000000400\n"), "CAP_NET_BIND_SERVICE");
        assert!(!exempt_from_nproc("Name:\tx\n"));
    }

    #[test]
    fn counts_the_threads_of_one_real_user() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nThreads:\t7\n";
        assert_eq!(threads_of(status, 1000), Some(7));
        assert_eq!(threads_of(status, 0), None, "the real uid counts, not the effective one");
        assert_eq!(threads_of("Uid:\t1000\t1000\t1000\t1000\n", 1000), None);
    }

    #[test]
    fn the_tightest_cgroup_level_binds() {
        let mount = std::env::temp_dir().join(format!("runtime-pids-room-{}", std::process::id()));
        let (job, step) = (mount.join("job"), mount.join("job/step"));
        std::fs::create_dir_all(&step).unwrap();
        let write = |dir: &std::path::Path, max: &str, current: &str| {
            std::fs::write(dir.join("pids.max"), max).unwrap();
            std::fs::write(dir.join("pids.current"), current).unwrap();
        };
        write(&job, "100\n", "90\n");
        write(&step, "1000\n", "5\n");
        let place = Cgroup { version: CgroupVersion::V2, dir: step.clone(), mount_point: mount.clone() };
        assert_eq!(cgroup_room(&place), Some(ProcessRoom { processes: 10, limit: ProcessLimit::Cgroup(job.clone()) }));
        // No limit ("max") at a level, or none anywhere.
        write(&job, "max\n", "90\n");
        assert_eq!(cgroup_room(&place).map(|room| room.processes), Some(995));
        write(&step, "max\n", "5\n");
        assert_eq!(cgroup_room(&place), None);
        std::fs::remove_dir_all(&mount).unwrap();
    }

    #[test]
    fn this_machine_has_some_room() {
        let room = process_room().expect("pid_max is readable here");
        assert!(room.processes > 0, "{room:?}");
        assert!(room.processes < 1 << 32, "{room:?}");
    }
}
