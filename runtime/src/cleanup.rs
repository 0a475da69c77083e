//! Removing segments: a run's own at its end, and stale ones left by runs whose root died.

use crate::prefix::{root_of, NAME_PREFIX};

/// What a cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Names removed.
    pub removed: Vec<String>,
    /// Names kept because their run's root is alive.
    pub kept: Vec<String>,
    /// Names kept because their run's root lives in another PID namespace (a container that
    /// shares `/dev/shm` but not its pids), where its liveness cannot be judged, and that
    /// namespace is not known to be gone.
    pub foreign: Vec<String>,
}

/// Removes every segment of runs whose root process is dead (pid + start time, so a reused
/// pid does not keep a dead run's segments alive). Safe to run at any time and from several
/// processes at once: exactly one of them removes each segment, the others see it gone. Runs
/// of another PID namespace are left alone (their pids mean nothing here) unless that whole
/// namespace is gone, which the host's namespace can tell (a container killed outright).
/// A cleaner in a container leaves those to the host.
///
/// # Errors
/// When `/dev/shm` cannot be listed.
pub fn remove_stale() -> std::io::Result<CleanupReport> {
    scan(false)
}

/// Like [`remove_stale`], but removes nothing: reports what it would remove.
///
/// # Errors
/// When `/dev/shm` cannot be listed.
pub fn find_stale() -> std::io::Result<CleanupReport> {
    scan(true)
}

fn scan(dry_run: bool) -> std::io::Result<CleanupReport> {
    let mut report = CleanupReport::default();
    // Whether each other namespace met is gone: one look through /proc each, not one a name.
    let mut gone = shm_queue::GoneNamespaces::default();
    for name in shm_queue::list(NAME_PREFIX)? {
        // A name we could not have made (anyone can name a file in /dev/shm) is not ours, even
        // if it starts like ours: never reported, never touched.
        if shm_queue::ShmName::new(&name).is_err() {
            continue;
        }
        let Some(root) = root_of(&name) else { continue };
        if root.is_foreign() {
            if !gone.is_gone(root.pid_namespace) {
                report.foreign.push(name);
                continue;
            }
        } else if root.is_alive() {
            report.kept.push(name);
            continue;
        }
        if dry_run {
            report.removed.push(name);
            continue;
        }
        // NotFound means another cleaner won the race for this one: fine.
        if shm_queue::unlink(&name).is_ok() {
            report.removed.push(name);
        }
    }
    Ok(report)
}

/// Removes every segment whose name starts with `prefix`.
pub(crate) fn remove_run(prefix: &str) -> std::io::Result<()> {
    for name in shm_queue::list(prefix)? {
        let _ = shm_queue::unlink(&name);
    }
    Ok(())
}
