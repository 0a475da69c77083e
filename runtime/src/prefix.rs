//! Names: every segment of a run starts with the run's prefix, which names its root process.
//!
//! `/shmpipe.<root pid>.<root start time>.<run number>.<what>`. The root's pid and start time in
//! the name make a leftover recognisable as stale without opening it: if that process is not
//! alive (pid + start time, see [`shm_queue::ProcessId`]), nothing of the run can be.

use shm_queue::ProcessId;

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
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(format!("{NAME_PREFIX}{}.{}.{n}.", me.pid, me.start_time))
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

/// The root process recorded in a segment name of ours, or `None` for a name that is not one.
pub fn root_of(name: &str) -> Option<ProcessId> {
    let rest = name.strip_prefix('/').unwrap_or(name).strip_prefix(&NAME_PREFIX[1..])?;
    let mut parts = rest.splitn(4, '.');
    let pid = parts.next()?.parse().ok()?;
    let start_time = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?;
    Some(ProcessId { pid, start_time })
}

/// The run prefix of a segment name of ours (everything up to and including the run number).
pub fn run_prefix_of(name: &str) -> Option<String> {
    root_of(name)?;
    let with_slash = if name.starts_with('/') { name.to_owned() } else { format!("/{name}") };
    let mut dots = with_slash.match_indices('.').map(|(i, _)| i);
    let end = dots.nth(3)?;
    Some(with_slash[..=end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_root() {
        let prefix = RunPrefix::next();
        let name = prefix.name("q7");
        assert_eq!(root_of(&name), Some(ProcessId::current()));
        assert_eq!(run_prefix_of(&name).as_deref(), Some(prefix.as_str()));
        assert_eq!(root_of("/other.1.2.3.x"), None);
        assert_eq!(root_of("/shmpipe.x.2.3.q"), None);
        assert_eq!(root_of("/shmpipe.1.2"), None);
    }
}
