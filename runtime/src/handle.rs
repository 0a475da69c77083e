//! What every process of a run holds: the table, the spawn queue, and the operations on them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;
use shm_queue::{AttachError, Kind, Mpsc, PushError, Queue, QueueOptions};

use crate::entry::Entry;
use crate::error::{ExitStatus, RuntimeError};
use crate::prefix::RunPrefix;
use crate::request::{QueueName, SpawnRequest, ARGS_MAX};
use crate::table::{exit_kind, sleep_on, state, StageId, Table};

/// How long a joiner sleeps before re-checking the run for failure. Long, because every way a
/// join can end wakes it: the stage's own exit record, and the server's record when it reaps a
/// stage (which it kills on any failure). With thousands of stages joining at once, a short
/// re-check would be a storm of wake-ups.
const RECHECK: Duration = Duration::from_secs(1);

/// A process's view of its run: spawn stages, make queues, join stages. The root gets one from
/// [`Run`](crate::Run) (by `Deref`); a stage gets one as its entry point's first argument.
pub struct RunHandle {
    pub(crate) prefix: RunPrefix,
    pub(crate) table: Table,
    pub(crate) spawn_queue: Queue<SpawnRequest, Mpsc>,
    pub(crate) entry_names: Arc<Vec<&'static str>>,
    /// The number of the builder whose entry points this run knows.
    pub(crate) registry: u32,
    pub(crate) stage: StageId,
    /// The fork server's pid as the root knows it (it forked it); 0 in the server and the
    /// stages, which read the table's.
    pub(crate) server: u32,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle").field("prefix", &self.prefix).field("stage", &self.stage).finish_non_exhaustive()
    }
}

/// How a joined stage ended, and the value its entry point returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageExit {
    /// Exit code or signal.
    pub status: ExitStatus,
    /// What its entry point returned in `Ok` (0 otherwise).
    pub result: u64,
}

impl RunHandle {
    /// This process's stage id (0 in the root).
    pub fn stage_id(&self) -> StageId {
        self.stage
    }

    /// The prefix of every segment name in this run.
    pub fn prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// Asks the fork server to start a stage running `entry(args)`. Returns at once; the stage
    /// starts about a fork later. Any process of the run may spawn.
    ///
    /// # Errors
    /// `ForeignEntry`, `ArgsTooLarge`, `TooManyStages`, the run's failure if it has failed,
    /// `ServerGone`.
    pub fn spawn<A: Pod>(&self, entry: Entry<A>, args: &A) -> Result<StageHandle<'_>, RuntimeError> {
        if entry.registry() != self.registry {
            return Err(RuntimeError::ForeignEntry { index: entry.index() });
        }
        let bytes = bytemuck::bytes_of(args);
        if bytes.len() > ARGS_MAX {
            return Err(RuntimeError::ArgsTooLarge { len: bytes.len(), max: ARGS_MAX });
        }
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        let id = self.table.allocate()?;
        let slot = self.table.stage(id).ok_or(RuntimeError::NoSuchStage(id))?;
        slot.entry.store(entry.index(), Ordering::Relaxed);
        slot.parent.store(self.stage, Ordering::Relaxed);
        slot.state.store(state::REQUESTED, Ordering::Release);
        let mut request = SpawnRequest {
            stage: id,
            entry: entry.index(),
            args_len: bytes.len() as u32,
            parent: self.stage,
            args: [0; ARGS_MAX],
        };
        request.args[..bytes.len()].copy_from_slice(bytes);
        // An end per request: the table of ends is small, and the root's keeper end keeps the
        // queue open between requests.
        let mut producer = loop {
            match self.spawn_queue.producer() {
                Ok(p) => break p,
                // Every end is taken by a process pushing a request: wait for one to leave,
                // unless the run has failed or its server died (then none ever will).
                Err(AttachError::TooManyEndpoints { .. }) => match self.health() {
                    Some(failure) => return Err(failure),
                    None => std::thread::sleep(Duration::from_micros(200)),
                },
                Err(_) => return Err(self.failure().unwrap_or(RuntimeError::ServerGone)),
            }
        };
        match producer.push(request) {
            Ok(()) => Ok(StageHandle { run: self, id }),
            Err(PushError::Disconnected(_) | PushError::Poisoned(_) | PushError::PeerDead { .. }) => {
                Err(self.failure().unwrap_or(RuntimeError::ServerGone))
            }
            Err(PushError::Full(_) | PushError::Timeout(_)) => {
                unreachable!("a blocking push neither fails full nor times out")
            }
        }
    }

    /// Creates a queue under the run's prefix. The name stays until the run's cleanup (any
    /// process may attach to it meanwhile); put the [`QueueName`] in a stage's arguments.
    ///
    /// # Errors
    /// Those of [`Queue::create_with`].
    pub fn create_queue<T: Pod, K: Kind>(
        &self,
        options: QueueOptions,
    ) -> Result<(Queue<T, K>, QueueName), RuntimeError> {
        let n = self.table.header().next_queue.fetch_add(1, Ordering::Relaxed);
        let name = self.prefix.name(&format!("q{n}"));
        let qname = QueueName::new(&name)
            .ok_or(shm_queue::CreateError::InvalidName(shm_queue::NameError::TooLong { len: name.len(), max: 127 }))?;
        let mut queue = Queue::create_with(&name, options)?;
        queue.keep_name();
        Ok((queue, qname))
    }

    /// A handle on stage `id` of this run, for joining it from any process.
    ///
    /// # Errors
    /// `NoSuchStage` for an id never handed out.
    pub fn stage(&self, id: StageId) -> Result<StageHandle<'_>, RuntimeError> {
        if id == 0 || id >= self.table.stage_end() {
            return Err(RuntimeError::NoSuchStage(id));
        }
        Ok(StageHandle { run: self, id })
    }

    /// The run's failure, if a stage has failed or the root was interrupted.
    pub fn failure(&self) -> Option<RuntimeError> {
        let (stage, pid, kind, value) = self.table.failure()?;
        if kind == exit_kind::INTERRUPTED {
            return Some(RuntimeError::Interrupted(value));
        }
        let status = if kind == exit_kind::SIGNAL { ExitStatus::Signal(value) } else { ExitStatus::Code(value) };
        let reason = self.table.failure_message();
        Some(RuntimeError::StageFailed { stage, entry: self.entry_name(stage).to_owned(), pid, status, reason })
    }

    /// The run's failure, or [`RuntimeError::ServerGone`] if the fork server has died (then
    /// every stage has died with it).
    pub fn health(&self) -> Option<RuntimeError> {
        let gone = match self.server {
            // The root forked the server: it asks the kernel about its own child, which needs
            // no `/proc` (without one, every process counts as running), and it trusts its own
            // copy of the pid, not the table's, which any process of the run can scribble on.
            0 => {
                let server = self.table.header().server_pid.load(Ordering::Acquire);
                server != 0 && !shm_queue::ProcessStatus::is_running(server)
            }
            server => crate::process::child_has_ended(server as libc::pid_t),
        };
        self.failure().or_else(|| gone.then_some(RuntimeError::ServerGone))
    }

    /// Waits until the run fails (a stage fails or the root is interrupted) or `timeout`
    /// passes; returns the failure. A `timeout` too large to add to the clock (such as
    /// `Duration::MAX`) waits for a failure however long it takes.
    pub fn wait_failure(&self, timeout: Duration) -> Option<RuntimeError> {
        let header = self.table.header();
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            let seen = header.event.load(Ordering::SeqCst);
            if let Some(f) = self.failure() {
                return Some(f);
            }
            let now = std::time::Instant::now();
            let left = deadline.map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(now));
            if left.is_zero() {
                return None;
            }
            sleep_on(&header.event, &header.event_waiters, seen, left.min(Duration::from_millis(50)));
        }
    }

    /// Sleeps on `word` until it moves from `seen` or the re-check period passes, then looks
    /// at the run's health if nothing happened. The root first asks the kernel about its
    /// server (one `waitid`): a server that died while the root waited on something else (a
    /// queue, say), which spent its SIGCHLD, is reported now, not a re-check period later.
    fn sleep_then_check(&self, word: &AtomicU32, waiters: &AtomicU32, seen: u32) -> Result<(), RuntimeError> {
        // Only while nothing has happened: news on `word` (a stage's exit) comes first.
        if self.server != 0 && word.load(Ordering::SeqCst) == seen {
            if let Some(failure) = self.health() {
                return Err(failure);
            }
        }
        sleep_on(word, waiters, seen, RECHECK);
        self.check_server(word, seen)
    }

    /// After a wait on `word` (last seen at `seen`): if nothing happened (it timed out, or the
    /// root's SIGCHLD cut it short), the run's [`health`](Self::health). Once the server is
    /// dead, every stage has died with it and nobody will record their ends: a wait for one
    /// would never end. Looked at only when nothing happened, so that waits that are answered
    /// cost no `/proc` read.
    fn check_server(&self, word: &AtomicU32, seen: u32) -> Result<(), RuntimeError> {
        if word.load(Ordering::SeqCst) != seen {
            return Ok(());
        }
        self.health().map_or(Ok(()), Err)
    }

    pub(crate) fn entry_name(&self, stage: StageId) -> &'static str {
        self.table
            .stage(stage)
            .and_then(|s| self.entry_names.get(s.entry.load(Ordering::Relaxed) as usize).copied())
            .unwrap_or("unknown entry")
    }
}

/// A stage of the run, to wait for or kill. Not necessarily a child of this process: stages
/// are forked by the run's fork server.
#[derive(Debug)]
pub struct StageHandle<'a> {
    run: &'a RunHandle,
    id: StageId,
}

impl StageHandle<'_> {
    /// Its id.
    pub fn id(&self) -> StageId {
        self.id
    }

    /// Its pid, waiting until it has been forked.
    ///
    /// # Errors
    /// The run's failure, if it fails before the stage starts; `ServerGone` if the fork server
    /// died first.
    pub fn pid(&self) -> Result<u32, RuntimeError> {
        let entry = self.run.table.stage(self.id).ok_or(RuntimeError::NoSuchStage(self.id))?;
        loop {
            let seen = entry.seq.load(Ordering::SeqCst);
            let pid = entry.pid.load(Ordering::Acquire);
            if pid != 0 {
                return Ok(pid);
            }
            if let Some(failure) = self.run.failure() {
                return Err(failure);
            }
            self.run.sleep_then_check(&entry.seq, &entry.waiters, seen)?;
        }
    }

    /// Waits until the stage has ended successfully.
    ///
    /// # Errors
    /// The run's failure (`StageFailed` naming the first stage that failed, or `Interrupted`)
    /// as soon as it is recorded, even while this stage still runs: the run is being stopped.
    /// A stage that ended badly is such a failure. `ServerGone` if the fork server died before
    /// the stage ended (it died with the server; found within a second, at once in a root,
    /// whose waits SIGCHLD interrupts). `JoinSelf` for a stage's own handle, whose join could
    /// never end.
    pub fn join(self) -> Result<StageExit, RuntimeError> {
        if self.id == self.run.stage {
            return Err(RuntimeError::JoinSelf(self.id));
        }
        let entry = self.run.table.stage(self.id).ok_or(RuntimeError::NoSuchStage(self.id))?;
        loop {
            let seen = entry.seq.load(Ordering::SeqCst);
            if let Some(failure) = self.run.failure() {
                return Err(failure);
            }
            if let Some(status) = entry.exit_status() {
                if !status.success() {
                    // It failed: that is the run's failure (or a consequence of an earlier one).
                    let pid = entry.pid.load(Ordering::Acquire);
                    return Err(self.run.failure().unwrap_or_else(|| RuntimeError::StageFailed {
                        stage: self.id,
                        entry: self.run.entry_name(self.id).to_owned(),
                        pid,
                        status,
                        reason: None,
                    }));
                }
                return Ok(StageExit { status, result: entry.result.load(Ordering::Relaxed) });
            }
            self.run.sleep_then_check(&entry.seq, &entry.waiters, seen)?;
        }
    }

    /// Sends SIGKILL to the stage, if it has not ended. Its death fails the run.
    ///
    /// # Errors
    /// The run's failure, if the stage never started.
    pub fn kill(&self) -> Result<(), RuntimeError> {
        let pid = self.pid()?;
        // Read from the run table, which any process of the run can scribble on: only a real
        // pid goes to kill(2), where -1 would mean every process we may signal, and other
        // negative values whole process groups.
        if !(1..crate::process::PID_LIMIT).contains(&pid) {
            return Ok(());
        }
        let entry = self.run.table.stage(self.id).ok_or(RuntimeError::NoSuchStage(self.id))?;
        // Unreaped stages keep their pid, and the server reaps before it marks EXITED: between
        // the two (a failure's poisoning and kills lie there, milliseconds) the pid could in
        // theory be reused, but pids are handed out in turn (up to `pid_max`, 32,768 to 4
        // million). A stage the OOM killer has already killed, killed again here before the
        // server reaps it, loses its "out of memory" guess: the run says less, not something
        // false.
        if entry.state.load(Ordering::Acquire) != state::EXITED {
            entry.kill_requested.store(1, Ordering::Release);
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        Ok(())
    }
}
