//! Stages before the root and the server when the kernel must kill for memory.
//!
//! The OOM killer picks the process with the largest footprint, and in a run that is the root
//! or the fork server: they map the run's table (4.5 MB) beside whatever the root holds, while
//! a stage maps a few rings. Measured in a memory cgroup too small for a sieve's rings: the
//! killer took the server, then the root, and the run's 603 segments stayed in `/dev/shm`
//! until `shmq clean` — the two processes that clean up were the ones killed. With stages
//! scored higher, a stage is killed, the run fails naming it ("signal 9 (SIGKILL)", most likely
//! out of memory), and the root and the server remove everything as after any failed stage.
//!
//! Stages get an `oom_score_adj` [`STAGE_BIAS`] above the server's (at most 1000, the kernel's
//! maximum); raising it needs no privilege. The server writes it into each child's
//! `/proc/PID/oom_score_adj` right after the fork, so the server itself never holds the raised
//! value (were it raised around its `fork`, an OOM during the fork — when a growing pipeline
//! allocates — would find it level with the stages and larger), and the child does not pay a
//! fresh process's first `/proc` access (~18 µs here) on the path of every spawn. The write
//! comes last of what the server tells a new child, so the child's entry point often starts
//! before it (tens of µs): until then the child is level with the server, while every other
//! stage is above both, and a value the entry point sets for itself that early is overwritten.
//! Where `oom_score_adj` cannot be read or written nothing changes.
//!
//! A stage killed by a SIGKILL that neither the server nor
//! [`StageHandle::kill`](crate::StageHandle::kill) sent is reported as most likely out of
//! memory when the OOM killer has been at work in the run's memory cgroup during the run
//! ([`MemoryCgroup::oom_kills`](crate::MemoryCgroup::oom_kills); without a memory cgroup, the
//! machine's count, `oom_kill` in `/proc/vmstat`): "signal 9" alone would leave the user
//! guessing.

use crate::memory_cgroup::stat_field;
use crate::MemoryCgroup;

/// How much more likely to be chosen than the server a stage is: half the scale, so a stage
/// goes first unless it uses far less memory than the server.
pub const STAGE_BIAS: i32 = 500;

/// The kernel's range for `oom_score_adj`.
const MAX_ADJ: i32 = 1000;

/// The value the server gives its stages.
pub(crate) struct OomBias {
    stages: String,
}

impl OomBias {
    /// In the server: reads its own `oom_score_adj`, and writes it back to see that such files
    /// can be written here (a read-only `/proc` cannot). `None` when either fails, or when the
    /// server is already at the maximum (no stage can rank above it).
    pub(crate) fn new() -> Option<Self> {
        let own = std::fs::read_to_string("/proc/self/oom_score_adj").ok()?;
        std::fs::write("/proc/self/oom_score_adj", own.trim()).ok()?;
        let own: i32 = own.trim().parse().ok()?;
        let stages = (own + STAGE_BIAS).min(MAX_ADJ);
        (stages > own).then(|| Self { stages: stages.to_string() })
    }

    /// Right after forking `child`, which the server has not reaped (it reaps only in its own
    /// loop), so the pid is still that child's, a zombie's at worst: raises its value. False
    /// when the write failed, after which the caller stops trying.
    pub(crate) fn mark(&self, child: libc::pid_t) -> bool {
        std::fs::write(format!("/proc/{child}/oom_score_adj"), &self.stages).is_ok()
    }
}

/// The OOM killer's count when the run started — in the run's memory cgroup where there is
/// one, else on the machine — to tell a stage it ended from one killed by a person or a
/// program.
#[derive(Debug)]
pub(crate) struct OomKills {
    cgroup: Option<MemoryCgroup>,
    at_start: u64,
}

impl OomKills {
    /// The count now; `None` without either count (a kernel before 4.13 has neither).
    pub(crate) fn now() -> Option<Self> {
        let cgroup = MemoryCgroup::of_this_process().filter(|cgroup| cgroup.oom_kills().is_some());
        let at_start = Self::count(cgroup.as_ref())?;
        Some(Self { cgroup, at_start })
    }

    fn count(cgroup: Option<&MemoryCgroup>) -> Option<u64> {
        match cgroup {
            Some(cgroup) => cgroup.oom_kills(),
            None => stat_field(&std::fs::read_to_string("/proc/vmstat").ok()?, "oom_kill"),
        }
    }

    /// Why a stage that was sent SIGKILL by someone else most likely died, if the OOM killer
    /// has killed since the count was taken.
    pub(crate) fn reason_since(&self) -> Option<String> {
        let kills = Self::count(self.cgroup.as_ref())?.checked_sub(self.at_start).filter(|&k| k > 0)?;
        let processes = if kills == 1 { "process" } else { "processes" };
        let place = if self.cgroup.is_some() { "in this memory cgroup" } else { "on this machine" };
        Some(format!(
            "most likely out of memory (the kernel's OOM killer ended {kills} {processes} {place} during the run)"
        ))
    }
}
