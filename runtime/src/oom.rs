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
//! Stages are forked with `oom_score_adj` [`STAGE_BIAS`] above the server's (at most 1000, the
//! kernel's maximum). Raising it needs no privilege. The server raises its own value just
//! before each fork and restores it right after, so the child inherits the raised value
//! without writing `/proc` itself: a fresh process's first `/proc` open costs ~18 µs here,
//! on the path of every spawn, while the server's two writes to a file it keeps open cost a
//! microsecond or two. Without a writable `/proc/self/oom_score_adj` nothing changes.
//!
//! A stage killed by SIGKILL that the server did not send is reported as most likely out of
//! memory when the kernel's count of OOM kills (`oom_kill` in `/proc/vmstat`, global and
//! cgroup kills alike) rose during the run: "signal 9" alone would leave the user guessing.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// How much more likely to be chosen than the server a stage is: half the scale, so a stage
/// goes first unless it uses far less memory than the server.
pub const STAGE_BIAS: i32 = 500;

/// The kernel's range for `oom_score_adj`.
const MAX_ADJ: i32 = 1000;

/// The server's `/proc/self/oom_score_adj`, kept open, with its own value and the stages'.
pub(crate) struct OomBias {
    file: File,
    own: String,
    stages: String,
}

impl OomBias {
    /// In the server: opens its `oom_score_adj`. `None` when it cannot be read and written, or
    /// when the server is already at the maximum (no stage can rank above it).
    pub(crate) fn new() -> Option<Self> {
        let file = File::options().read(true).write(true).open("/proc/self/oom_score_adj").ok()?;
        let mut text = [0u8; 16];
        let len = file.read_at(&mut text, 0).ok()?;
        let own: i32 = std::str::from_utf8(&text[..len]).ok()?.trim().parse().ok()?;
        let stages = (own + STAGE_BIAS).min(MAX_ADJ);
        (stages > own).then(|| Self { file, own: own.to_string(), stages: stages.to_string() })
    }

    /// Just before forking a stage: the value the child will inherit.
    pub(crate) fn raise(&self) {
        let _ = self.file.write_at(self.stages.as_bytes(), 0);
    }

    /// Right after the fork, in the server: its own value again. (Lowering back to where it
    /// was needs no privilege: the kernel refuses only values below the least one a privileged
    /// process set.)
    pub(crate) fn restore(&self) {
        let _ = self.file.write_at(self.own.as_bytes(), 0);
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
