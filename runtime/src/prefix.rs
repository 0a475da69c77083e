//! Names: every segment of a run starts with the run's prefix, which names its root process.
//!
//! `/shmpipe.<root pid>.<root start time>.<PID namespace>.<run number>.<what>`. The root's pid
//! and start time in the name make a leftover recognisable as stale without opening it: if
//! that process is not alive (pid + start time, see [`shm_queue::ProcessId`]), nothing of the
//! run can be. The namespace says where that pid means something: a cleaner in another PID
//! namespace (a container sharing only `/dev/shm`) cannot judge the root, and leaves the run
//! alone (see [`shm_queue::PidNamespace`]; 0 where the root could not tell).

use shm_queue::{PidNamespace, ProcessId};

/// The fixed start of every segment name this runtime creates.
pub const NAME_PREFIX: &str = "/shmpipe.";

/// A run's name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPrefix(String);

impl RunPrefix {
    /// The next prefix for a run rooted in this process.
    pub(crate) fn next() -> Self {
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let me = ProcessId::current();
        let namespace = PidNamespace::current().map_or(0, PidNamespace::as_raw);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(format!("{NAME_PREFIX}{}.{}.{namespace}.{n}.", me.pid, me.start_time))
    }

    /// The prefix, with its leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of one of the run's segments.
    pub fn name(&self, what: &str) -> String {
        format!("{}{what}", self.0)
    }
}

/// The root of a run, as the names of its segments record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRoot {
    /// The root process, a pid of [`pid_namespace`](Self::pid_namespace).
    pub process: ProcessId,
    /// Its PID namespace, as [`PidNamespace::as_raw`] gives it (0: unknown).
    pub pid_namespace: u64,
}

impl RunRoot {
    /// Whether the root lives in another PID namespace than this process, where its pid names
    /// someone else (or nobody) and its liveness cannot be judged.
    pub fn is_foreign(&self) -> bool {
        PidNamespace::is_foreign(self.pid_namespace)
    }

    /// Whether the root is alive. A root in another PID namespace cannot be judged by its pid:
    /// it counts as alive unless its whole namespace [is gone](PidNamespace::is_gone), which
    /// only the host's namespace can tell.
    pub fn is_alive(&self) -> bool {
        if self.is_foreign() {
            return !PidNamespace::is_gone(self.pid_namespace);
        }
        self.process.is_alive()
    }
}

/// The root recorded in a segment name of ours, or `None` for a name that is not one. Names
/// of the format before the namespace (`/shmpipe.<pid>.<start time>.<run>.<what>`, whose
/// `<what>` never starts with a digit) are still recognised, with the namespace unknown, so
/// that an upgrade does not strand the leftovers of older runs.
///
/// ```
/// let root = runtime::root_of("/shmpipe.41.9000.4026531836.0.table").unwrap();
/// assert_eq!((root.process.pid, root.process.start_time, root.pid_namespace), (41, 9000, 4026531836));
/// let older = runtime::root_of("/shmpipe.41.9000.0.table").unwrap();
/// assert_eq!((older.process.pid, older.pid_namespace), (41, 0));
/// assert!(runtime::root_of("/shmpipe.41.table").is_none());
/// ```
pub fn root_of(name: &str) -> Option<RunRoot> {
    parse(name).map(|(root, _)| root)
}

/// The run prefix of a segment name of ours (everything up to and including the run number).
pub fn run_prefix_of(name: &str) -> Option<String> {
    let (_, fields) = parse(name)?;
    let with_slash = if name.starts_with('/') { name.to_owned() } else { format!("/{name}") };
    let mut dots = with_slash.match_indices('.').map(|(i, _)| i);
    let end = dots.nth(fields)?;
    Some(with_slash[..=end].to_owned())
}

/// The root of a name of ours and the number of numeric fields before `<what>`.
fn parse(name: &str) -> Option<(RunRoot, usize)> {
    let rest = name.strip_prefix('/').unwrap_or(name).strip_prefix(&NAME_PREFIX[1..])?;
    let fields: Vec<&str> = rest.splitn(5, '.').collect();
    let process = ProcessId { pid: fields.first()?.parse().ok()?, start_time: fields.get(1)?.parse().ok()? };
    let is_run = |field: &str| field.parse::<u32>().is_ok();
    match fields[2..] {
        [namespace, run, what] if is_run(run) && !what.is_empty() => {
            Some((RunRoot { process, pid_namespace: namespace.parse().ok()? }, 4))
        }
        // The older format: the fourth field is already `<what>`, which starts with a letter.
        [run, what, ..] if is_run(run) && what.starts_with(|c: char| !c.is_ascii_digit()) => {
            Some((RunRoot { process, pid_namespace: 0 }, 3))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_root() {
        let prefix = RunPrefix::next();
        let name = prefix.name("q7");
        let root = root_of(&name).unwrap();
        assert_eq!(root.process, ProcessId::current());
        assert_eq!(PidNamespace::from_raw(root.pid_namespace), PidNamespace::current());
        assert!(!root.is_foreign() && root.is_alive());
        assert_eq!(run_prefix_of(&name).as_deref(), Some(prefix.as_str()));
        assert_eq!(root_of("/other.1.2.3.x"), None);
        assert_eq!(root_of("/shmpipe.x.2.3.q"), None);
        assert_eq!(root_of("/shmpipe.1.2"), None);
        assert_eq!(root_of("/shmpipe.1.2.3.4"), None, "no <what>");
        assert_eq!(root_of("/shmpipe.1.2.3.4."), None, "an empty <what>");
        let older = "/shmpipe.1.2.3.q7";
        assert_eq!(root_of(older).map(|r| (r.process.pid, r.process.start_time, r.pid_namespace)), Some((1, 2, 0)));
        assert_eq!(run_prefix_of(older).as_deref(), Some("/shmpipe.1.2.3."));
        assert_eq!(run_prefix_of("/shmpipe.1.2.77.3.q7").as_deref(), Some("/shmpipe.1.2.77.3."));
    }

    #[test]
    fn a_root_in_another_pid_namespace_is_judged_by_its_namespace_not_its_pid() {
        let here = PidNamespace::current().unwrap().as_raw();
        // Above the kernel's pid_max limit (2^22): no such process in this namespace.
        let ghost = ProcessId { pid: (1 << 22) + 1, start_time: 1 };
        let local = RunRoot { process: ghost, pid_namespace: here };
        assert!(!local.is_foreign() && !local.is_alive());
        let live = RunRoot { process: ghost, pid_namespace: here + 1 };
        // Namespace numbers are 32-bit: this one never had a process, which only the host's
        // namespace can see.
        let gone = RunRoot { process: ghost, pid_namespace: 1 << 40 };
        assert!(live.is_foreign() && gone.is_foreign());
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !PidNamespace::sees_every_namespace() {
            assert!(gone.is_alive() && live.is_alive(), "judged from a namespace that cannot see the other");
        } else if root {
            // The host's namespace, as root, reads every process's namespace.
            assert!(!gone.is_alive());
        }
        let unknown = RunRoot { process: ghost, pid_namespace: 0 };
        assert!(!unknown.is_foreign() && !unknown.is_alive(), "an unknown namespace is taken as ours");
    }
}
