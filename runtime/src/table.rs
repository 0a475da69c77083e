//! The run's table, in a segment of its own: run-wide state and one entry per stage.
//!
//! Every process of the run maps it. Stages are created by the fork server, so a stage that
//! joins another is usually not its parent: exit statuses travel through this table (written
//! by the exiting stage itself, or by the server when it reaps one that died by a signal), and
//! joiners sleep on a shared futex in the entry.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use shm_queue::Segment;

use crate::error::{ExitStatus, RuntimeError};

/// Identifies a stage within its run (1, 2, …; 0 is the root).
pub type StageId = u32;

/// Stages a run can hold, over its whole life.
pub const MAX_STAGES: u32 = 1 << 16;

const MAGIC: u64 = u64::from_le_bytes(*b"SHMPRUN\0");

/// `StageEntry::state` values.
/// An entry never used is all zeros (FREE).
pub(crate) mod state {
    /// A spawn request is on its way to the fork server.
    pub const REQUESTED: u32 = 1;
    /// Forked: `pid` is valid.
    pub const RUNNING: u32 = 2;
    /// The stage recorded its own exit status and is about to `_exit`.
    pub const EXITING: u32 = 3;
    /// Reaped by the fork server.
    pub const EXITED: u32 = 4;
}

/// `RunHeader::failure_kind` / `StageEntry::exit_kind` values.
pub(crate) mod exit_kind {
    pub const NONE: u32 = 0;
    pub const CODE: u32 = 1;
    pub const SIGNAL: u32 = 2;
    /// Run-level only: the root was interrupted.
    pub const INTERRUPTED: u32 = 3;
    /// Run-level only: a failure is being recorded.
    pub const CLAIMED: u32 = 4;

    /// How a stage's `status` is written down: its kind and its value.
    pub fn of(status: super::ExitStatus) -> (u32, i32) {
        match status {
            super::ExitStatus::Code(c) => (CODE, c),
            super::ExitStatus::Signal(s) => (SIGNAL, s),
        }
    }
}

#[repr(C)]
pub(crate) struct RunHeader {
    pub magic: u64,
    pub root_pid: u32,
    pub server_pid: AtomicU32,
    pub next_stage: AtomicU32,
    pub next_queue: AtomicU32,
    /// Stage id of the first failure (0: none).
    pub failed_stage: AtomicU32,
    pub failure_kind: AtomicU32,
    pub failure_value: AtomicI32,
    pub failed_pid: AtomicU32,
    /// Set by the root: the server should stop once every stage is gone.
    pub stop: AtomicU32,
    /// Bumped on every stage exit and on failure (a futex word for whoever waits on the run).
    pub event: AtomicU32,
    pub event_waiters: AtomicU32,
    /// Bytes of the first failure's message (see [`FailureMessage`]), written with the failure.
    pub failure_message_len: AtomicU32,
}

/// What the first failing stage said (its error's text, or its panic's), so that the root
/// reports the failure in one line with its reason. At the end of the table, after the stage
/// entries; bytes packed into atomic words, since any process of the run may scribble on it.
#[repr(C)]
pub(crate) struct FailureMessage {
    words: [AtomicU64; FAILURE_MESSAGE_MAX / 8],
}

/// How long a recorder of a failure lets another that claimed the run's first failure finish
/// writing it (microseconds of work) before it takes the claim over.
pub(crate) const RECORDER_PATIENCE: Duration = Duration::from_millis(100);

/// Bytes of a failure's message the table keeps; a longer one is cut at a character boundary.
pub(crate) const FAILURE_MESSAGE_MAX: usize = 256;

#[repr(C)]
pub(crate) struct StageEntry {
    pub state: AtomicU32,
    /// Futex word: bumped on every state change.
    pub seq: AtomicU32,
    pub pid: AtomicU32,
    pub entry: AtomicU32,
    pub parent: AtomicU32,
    pub exit_kind: AtomicU32,
    pub exit_value: AtomicI32,
    pub waiters: AtomicU32,
    pub result: AtomicU64,
    /// The stage's start time (`/proc/PID/stat`), as the fork server read it after the fork
    /// (0: not yet).
    pub start_time: AtomicU64,
    /// 1 once [`StageHandle::kill`](crate::StageHandle::kill) has sent it SIGKILL: its death
    /// is then nobody's guess (not the OOM killer's).
    pub kill_requested: AtomicU64,
    pub _reserved: [AtomicU64; 1],
}

const HEADER_LEN: usize = 128;
// Every process of a run is a fork of one binary, but the layout is still the run's format:
// fields come out of the reserved words, not on top of them.
const _: () = assert!(std::mem::size_of::<StageEntry>() == 64, "a stage entry changed size");
const _: () = assert!(std::mem::size_of::<RunHeader>() <= HEADER_LEN, "the run header outgrew its room");

/// A mapped run table.
pub(crate) struct Table {
    segment: Segment,
}

impl Table {
    pub fn len_bytes() -> usize {
        Self::message_offset() + std::mem::size_of::<FailureMessage>()
    }

    fn message_offset() -> usize {
        HEADER_LEN + MAX_STAGES as usize * std::mem::size_of::<StageEntry>()
    }

    fn message(&self) -> &FailureMessage {
        // SAFETY: the mapping is len_bytes() long, which ends with the message; the offset is
        // a multiple of 8; any bits are valid atomics.
        unsafe { &*self.segment.as_ptr().add(Self::message_offset()).cast::<FailureMessage>() }
    }

    pub fn create(name: &str, root_pid: u32) -> Result<Self, RuntimeError> {
        let segment = Segment::create(name, Self::len_bytes())?;
        let table = Self { segment };
        // SAFETY: a fresh zeroed mapping of len_bytes(); no one else has it yet.
        unsafe {
            let header = table.segment.as_ptr().cast::<RunHeader>();
            (*header).root_pid = root_pid;
            (*header).next_stage = AtomicU32::new(1);
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*header).magic), MAGIC);
        }
        Ok(table)
    }

    pub fn header(&self) -> &RunHeader {
        // SAFETY: the mapping is at least len_bytes() long (create/open) and page-aligned;
        // RunHeader is atomics and integers, valid for any bits.
        unsafe { &*self.segment.as_ptr().cast::<RunHeader>() }
    }

    /// The entry of stage `id`, or `None` outside the table. Ids come from shared memory and
    /// from callers, so they are always bounds-checked against our own constant.
    pub fn stage(&self, id: StageId) -> Option<&StageEntry> {
        if id == 0 || id >= MAX_STAGES {
            return None;
        }
        // SAFETY: id < MAX_STAGES, so the entry lies within the mapping; any bits are valid.
        Some(unsafe { &*self.segment.as_ptr().add(HEADER_LEN).cast::<StageEntry>().add(id as usize) })
    }

    /// Allocates a fresh stage id.
    pub fn allocate(&self) -> Result<StageId, RuntimeError> {
        let id = self.header().next_stage.fetch_add(1, Ordering::AcqRel);
        if id >= MAX_STAGES {
            return Err(RuntimeError::TooManyStages { max: MAX_STAGES - 1 });
        }
        Ok(id)
    }

    /// Highest stage id handed out so far, plus one.
    pub fn stage_end(&self) -> StageId {
        self.header().next_stage.load(Ordering::Acquire).min(MAX_STAGES)
    }

    /// The run's recorded failure, if any: (stage, pid, kind, value).
    pub fn failure(&self) -> Option<(StageId, u32, u32, i32)> {
        let h = self.header();
        let kind = h.failure_kind.load(Ordering::Acquire);
        if kind == exit_kind::NONE || kind == exit_kind::CLAIMED {
            return None;
        }
        Some((
            h.failed_stage.load(Ordering::Relaxed),
            h.failed_pid.load(Ordering::Relaxed),
            kind,
            h.failure_value.load(Ordering::Relaxed),
        ))
    }

    /// Waits up to `timeout` while a recorder is writing the first failure (it has claimed
    /// it but not yet published it); returns whether none is being written any more.
    fn wait_failure_recorded(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.header().failure_kind.load(Ordering::Acquire) == exit_kind::CLAIMED {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        true
    }

    /// The first failure's message, once the failure is recorded (empty: none given).
    pub fn failure_message(&self) -> Option<String> {
        self.failure()?;
        let len = (self.header().failure_message_len.load(Ordering::Relaxed) as usize).min(FAILURE_MESSAGE_MAX);
        let bytes: Vec<u8> =
            self.message().words.iter().flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes()).take(len).collect();
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Records the first failure, with what the failing stage said (`message`, possibly
    /// empty); later ones are ignored. Returns whether this one was first.
    fn record_failure(&self, stage: StageId, pid: u32, kind: u32, value: i32, message: &str) -> bool {
        let h = self.header();
        // Exactly one recorder wins; readers ignore the kind until it is final.
        if h.failure_kind
            .compare_exchange(exit_kind::NONE, exit_kind::CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.publish_failure(stage, pid, kind, value, message);
        true
    }

    /// [`record_failure`](Self::record_failure), but when another recorder has claimed the
    /// first failure and does not publish it within [`RECORDER_PATIENCE`] (killed or stopped
    /// half-way, it would leave the run failed with no failure anyone can read), records this
    /// one over its claim. Returns whether this one was recorded. (Should that recorder still
    /// finish, the two records mix; it has had its time.)
    pub fn record_failure_or_take_over(&self, stage: StageId, pid: u32, kind: u32, value: i32, message: &str) -> bool {
        if self.record_failure(stage, pid, kind, value, message) {
            return true;
        }
        if self.wait_failure_recorded(RECORDER_PATIENCE) {
            return false;
        }
        self.publish_failure(stage, pid, kind, value, message);
        true
    }

    /// Writes the failure's fields, then its kind, which publishes them.
    fn publish_failure(&self, stage: StageId, pid: u32, kind: u32, value: i32, message: &str) {
        let h = self.header();
        h.failed_stage.store(stage, Ordering::Relaxed);
        h.failed_pid.store(pid, Ordering::Relaxed);
        h.failure_value.store(value, Ordering::Relaxed);
        let mut cut = message.len().min(FAILURE_MESSAGE_MAX);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        for (word, bytes) in self.message().words.iter().zip(message.as_bytes()[..cut].chunks(8)) {
            let mut packed = [0u8; 8];
            packed[..bytes.len()].copy_from_slice(bytes);
            word.store(u64::from_le_bytes(packed), Ordering::Relaxed);
        }
        h.failure_message_len.store(cut as u32, Ordering::Relaxed);
        // Release: a reader that sees the kind sees the fields above.
        h.failure_kind.store(kind, Ordering::Release);
        bump(&h.event, &h.event_waiters);
    }
}

impl StageEntry {
    /// How it ended, once it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let s = self.state.load(Ordering::Acquire);
        if s != state::EXITING && s != state::EXITED {
            return None;
        }
        let value = self.exit_value.load(Ordering::Relaxed);
        match self.exit_kind.load(Ordering::Relaxed) {
            exit_kind::SIGNAL => Some(ExitStatus::Signal(value)),
            _ => Some(ExitStatus::Code(value)),
        }
    }

    /// Records an exit and wakes joiners. The stage itself records EXITING before `_exit`; the
    /// server records EXITED when it reaps (keeping the stage's own code unless a signal
    /// killed it first).
    pub fn record_exit(&self, new_state: u32, status: ExitStatus, result: Option<u64>) {
        if !self.keeps_own(status) {
            let (kind, value) = exit_kind::of(status);
            self.exit_kind.store(kind, Ordering::Relaxed);
            self.exit_value.store(value, Ordering::Relaxed);
        }
        if let Some(r) = result {
            self.result.store(r, Ordering::Relaxed);
        }
        // Release: a joiner that sees the state sees the status and result.
        self.state.store(new_state, Ordering::Release);
        bump(&self.seq, &self.waiters);
    }

    /// The status [`record_exit`](Self::record_exit) will leave for a stage reaped with
    /// `reaped`: its own code if it recorded one, unless a signal killed it first.
    pub fn status_once_reaped(&self, reaped: ExitStatus) -> ExitStatus {
        if self.keeps_own(reaped) {
            self.exit_status().unwrap_or(reaped)
        } else {
            reaped
        }
    }

    fn keeps_own(&self, status: ExitStatus) -> bool {
        self.state.load(Ordering::Acquire) == state::EXITING && matches!(status, ExitStatus::Code(_))
    }
}

/// Bumps a futex word and wakes its sleepers, if any.
pub(crate) fn bump(word: &AtomicU32, waiters: &AtomicU32) {
    word.fetch_add(1, Ordering::SeqCst);
    if waiters.load(Ordering::SeqCst) != 0 {
        shm_queue::futex::wake_all(word);
    }
}

/// Sleeps on `word` while it equals `seen`, at most `timeout`.
pub(crate) fn sleep_on(word: &AtomicU32, waiters: &AtomicU32, seen: u32, timeout: Duration) {
    waiters.fetch_add(1, Ordering::SeqCst);
    if word.load(Ordering::SeqCst) == seen {
        let _interrupted = shm_queue::futex::wait(word, seen, timeout);
    }
    waiters.fetch_sub(1, Ordering::SeqCst);
}
