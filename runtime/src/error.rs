//! Runtime errors.

use thiserror::Error;

use crate::table::StageId;

/// How a stage process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code (0: its entry returned `Ok`; 1: `Err`; 101: it panicked).
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit code {c}"),
            Self::Signal(s) => write!(f, "signal {s} ({})", signal_name(*s)),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        _ => "other",
    }
}

/// The text of [`RuntimeError::StageFailed`]: a stage the server could not start has no pid,
/// and the exit code it is recorded with (126, as a shell's for a command it cannot run) is
/// not something the stage said.
fn stage_failure(stage: StageId, entry: &str, pid: u32, status: ExitStatus, reason: Option<&str>) -> String {
    if pid == 0 {
        return format!(
            "stage {stage} ({entry}) could not be started: {}",
            reason.unwrap_or("the fork server could not fork it")
        );
    }
    let reason = reason.map(|r| format!(": {r}")).unwrap_or_default();
    format!("stage {stage} ({entry}, pid {pid}) failed: {status}{reason}")
}

/// Why a run (or one of its operations) failed.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// A stage exited non-zero or was killed, or could not be started (pid 0); the run was
    /// stopped.
    #[error("{}", stage_failure(*stage, entry, *pid, *status, reason.as_deref()))]
    StageFailed {
        /// The first stage that failed.
        stage: StageId,
        /// Its entry point's registered name.
        entry: String,
        /// Its pid.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
        /// What went wrong, when the stage (or the fork server starting it) could say: the
        /// error its entry returned, its panic's message and place, or why it could not be
        /// forked; for a stage SIGKILLed by nobody in the run while the kernel's OOM killer was
        /// at work, that it most likely ran out of memory. At most 256 bytes.
        reason: Option<String>,
    },
    /// The root received SIGINT, SIGTERM, SIGHUP or SIGQUIT; the run was stopped.
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    /// The stage table is full.
    #[error("too many stages: the run's table holds {max}")]
    TooManyStages {
        /// Its size.
        max: u32,
    },
    /// Spawn arguments larger than a request can carry.
    #[error("stage arguments are {len} bytes, at most {max} fit in a spawn request")]
    ArgsTooLarge {
        /// Their size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `spawn` was given an entry point that this run's builder did not register (another
    /// builder's, or a zeroed one).
    #[error("entry point {index} was not registered with this run's Runtime builder")]
    ForeignEntry {
        /// Its index in the builder that made it.
        index: u32,
    },
    /// A stage asked to join itself, which would wait for ever.
    #[error("stage {0} cannot join itself")]
    JoinSelf(StageId),
    /// A handle named a stage that does not exist.
    #[error("no stage {0} in this run")]
    NoSuchStage(StageId),
    /// The fork server is gone (the run is over or broke; its stages died with it).
    #[error("the run's fork server died; every stage died with it")]
    ServerGone,
    /// Creating a segment failed.
    #[error(transparent)]
    Create(#[from] shm_queue::CreateError),
    /// Opening a segment failed.
    #[error(transparent)]
    Open(#[from] shm_queue::OpenError),
    /// Attaching a queue end failed.
    #[error(transparent)]
    Attach(#[from] shm_queue::AttachError),
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Os {
        /// Which.
        call: &'static str,
        /// The errno.
        source: std::io::Error,
    },
    /// `Runtime::start` was called where it cannot work: from a process with several threads,
    /// from a stage, twice at once, or from a process whose children go to another PID
    /// namespace.
    #[error("cannot start a run: {0}")]
    BadStart(&'static str),
}

impl RuntimeError {
    pub(crate) fn os(call: &'static str) -> Self {
        Self::Os { call, source: std::io::Error::last_os_error() }
    }
}

/// What a stage's entry point returns: a 64-bit result for whoever joins it, or an error that
/// ends the run.
pub type StageResult = Result<u64, Box<dyn std::error::Error + Send + Sync>>;
