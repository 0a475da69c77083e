//! Stages before the root and the server when the kernel must kill for memory.
//!
//! The OOM killer picks the process with the largest footprint, and in a run that is the root
//! or the fork server: they map the run's table (4.5 MB) beside whatever the root holds, while
//! a stage maps a few rings. Measured in a memory cgroup too small for a sieve's rings: the
//! killer took the server, then the root, and the run's 603 segments stayed in `/dev/shm`
//! until `shmq clean` — the two processes that clean up were the ones killed. With stages
//! scored higher, a stage is killed, the run fails naming it ("killed by signal 9"), and the
//! root and the server remove everything as after any failed stage.
//!
//! Stages get an `oom_score_adj` [`STAGE_BIAS`] above the server's (at most 1000, the kernel's
//! maximum); raising it needs no privilege. The server writes it into each child's
//! `/proc/PID/oom_score_adj` right after the fork, so the server itself never holds the raised
//! value (were it raised around its `fork`, an OOM during the fork — when a growing pipeline
//! allocates — would find it level with the stages and larger), and the child does not pay a
//! fresh process's first `/proc` access (~18 µs here) on the path of every spawn. Until the
//! write the child is level with the server, while every other stage is above both. Without a
//! readable `/proc/self/oom_score_adj` nothing changes.
//!
//! A stage killed by SIGKILL that the server did not send is reported as most likely out of
//! memory when the kernel's count of OOM kills (`oom_kill` in `/proc/vmstat`, global and
//! cgroup kills alike) rose during the run: "signal 9" alone would leave the user guessing.

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
    /// In the server: reads its own `oom_score_adj`. `None` when it cannot be read, or when
    /// the server is already at the maximum (no stage can rank above it).
    pub(crate) fn new() -> Option<Self> {
        let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj").ok()?.trim().parse().ok()?;
        let stages = (own + STAGE_BIAS).min(MAX_ADJ);
        (stages > own).then(|| Self { stages: stages.to_string() })
    }

    /// Right after forking `child`: raises its value. A child that has already exited has no
    /// file left to write, which is fine.
    pub(crate) fn mark(&self, child: libc::pid_t) {
        let _ = std::fs::write(format!("/proc/{child}/oom_score_adj"), &self.stages);
    }
}

/// The kernel's count of OOM kills when the run started, to tell a stage the OOM killer ended
/// from one killed by a person or a program.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OomKills(u64);

impl OomKills {
    /// The count now; `None` without `/proc/vmstat` (or a kernel before 4.13, which lacks it).
    pub(crate) fn now() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/vmstat").ok()?;
        let count = text.lines().find_map(|line| line.strip_prefix("oom_kill "))?.trim().parse().ok()?;
        Some(Self(count))
    }

    /// Why a stage that was sent SIGKILL by someone else most likely died, if the OOM killer
    /// has killed since `self` was taken.
    pub(crate) fn reason_since(self) -> Option<String> {
        let kills = Self::now()?.0.checked_sub(self.0).filter(|&k| k > 0)?;
        let processes = if kills == 1 { "process" } else { "processes" };
        Some(format!("most likely out of memory (the kernel's OOM killer ended {kills} {processes} during the run)"))
    }
}
