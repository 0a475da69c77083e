//! The root's side: register entry points, start the run (and its fork server), finish it.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;
use shm_queue::{Mpsc, PidNamespace, Queue, QueueOptions};

use crate::cleanup;
use crate::entry::{Entry, Registry};
use crate::error::{RuntimeError, StageResult};
use crate::handle::RunHandle;
use crate::prefix::RunPrefix;
use crate::process;
use crate::request::SpawnRequest;
use crate::server;
use crate::signals;
use crate::table::Table;

/// Spawn requests waiting for the fork server.
const SPAWN_QUEUE_CAPACITY: usize = 1024;

/// Collects entry points, then starts a run. Register everything before [`start`](Self::start):
/// the fork server and every stage are forks of the root taken then.
///
/// ```no_run
/// use runtime::{RunHandle, Runtime, StageResult};
///
/// fn hello(_run: &RunHandle, n: u64) -> StageResult {
///     println!("stage says {n}");
///     Ok(n * 2)
/// }
///
/// let mut builder = Runtime::builder();
/// let hello = builder.register("hello", hello);
/// let run = builder.start()?;
/// let exit = run.spawn(hello, &21u64)?.join()?;
/// assert_eq!(exit.result, 42);
/// run.finish()?;
/// # Ok::<(), runtime::RuntimeError>(())
/// ```
#[derive(Debug, Default)]
pub struct Runtime {
    registry: Registry,
}

impl Runtime {
    /// An empty builder.
    pub fn builder() -> Self {
        Self::default()
    }

    /// Registers `f` as an entry point named `name`. The name appears in error messages, and a
    /// stage running `f` takes it as its process name (`ps`, `top`; the kernel keeps 15 bytes).
    pub fn register<A: Pod>(&mut self, name: &'static str, f: fn(&RunHandle, A) -> StageResult) -> Entry<A> {
        self.registry.register(name, f)
    }

    /// Starts a run: removes stale segments of dead runs, makes this process a child
    /// subreaper, creates the run's table and spawn queue, flushes stdout, forks the fork
    /// server, and installs handlers for SIGINT, SIGTERM, SIGHUP and SIGQUIT (those not
    /// ignored) and SIGCHLD. When the run ends its handlers and subreaper role are given back.
    ///
    /// The server and the stages start with SIGINT, SIGQUIT and SIGHUP ignored, which the
    /// terminal sends the whole process group: the root acts on them for the run. A stage that
    /// runs other programs should give those programs the default dispositions back.
    ///
    /// The calling process must be single-threaded (the fork copies only this thread).
    ///
    /// The handlers are installed without `SA_RESTART`, so that a signal wakes the root's
    /// sleeps on the run's queues at once: during a run, the root's own blocking system calls
    /// may return `EINTR` (`ErrorKind::Interrupted` in Rust), which `std`'s `read_exact`,
    /// `write_all` and the like retry, and which plain `read` and `write` callers must.
    ///
    /// Start runs early, while this process is small: the fork server is a copy of it, and
    /// every stage's fork costs in proportion to the server's mappings and resident memory.
    /// Measured on a 785-stage sieve: 64 MB of live heap in the root doubled the run's time;
    /// having run a few hundred threads before (glibc keeps their arenas: ~260 mappings
    /// instead of ~40) made it 1.6× slower.
    ///
    /// For the same reason, link the program statically where you can
    /// (`-C target-feature=+crt-static` with `--target`, as the workspace's `cargo sieve` alias
    /// does): without ld.so, libc, libm and libgcc_s mapped, the server has 15 mappings instead
    /// of 37, and a 9,929-stage sieve took 17 % less time.
    ///
    /// # Errors
    /// `BadStart` if this process has more than one thread, already has a run (or is a stage
    /// of one), or sends its children to another PID namespace; segment creation errors, or
    /// `Os` if a system call fails.
    pub fn start(self) -> Result<Run, RuntimeError> {
        // fork copies only the calling thread: a lock another thread holds (the allocator's,
        // stdout's) would stay held forever in the server and every stage.
        if another_thread_stays() {
            return Err(RuntimeError::BadStart(
                "the process has more than one thread, and fork copies only the calling one (start the run before any thread, or from a helper process)",
            ));
        }
        // The signal handlers and the reaping of orphans are the process's, not a run's.
        let mut active = ActiveRun::claim()?;
        // Every process of the run judges the others by pid in its own /proc: they must all
        // see the same pids.
        if !children_share_our_pid_namespace() {
            return Err(RuntimeError::BadStart(
                "this process sends its children to another PID namespace (unshare or setns with CLONE_NEWPID), where their pids differ from the ones it would see; start the run from a process of that namespace",
            ));
        }
        let _ = cleanup::remove_stale();
        // SAFETY: prctl with these arguments only changes this process's reaping role.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(RuntimeError::os("prctl(PR_SET_CHILD_SUBREAPER)"));
        }
        active.reaping = true;
        let prefix = RunPrefix::next();
        // SAFETY: getpid has no preconditions.
        let root = unsafe { libc::getpid() };
        let table = Table::create(&prefix.name("table"), root as u32)?;
        let mut spawn_queue = match Queue::<SpawnRequest, Mpsc>::create_with(
            &prefix.name("spawn"),
            QueueOptions::new(SPAWN_QUEUE_CAPACITY),
        ) {
            Ok(q) => q,
            Err(e) => {
                let _ = cleanup::remove_run(prefix.as_str());
                return Err(e.into());
            }
        };
        spawn_queue.keep_name();
        // Held by the root for the whole run: the spawn queue never closes while the root
        // lives, however many stages attach and detach to send requests.
        let keeper = match spawn_queue.producer() {
            Ok(keeper) => keeper,
            Err(e) => {
                let _ = cleanup::remove_run(prefix.as_str());
                return Err(e.into());
            }
        };
        let mut handle = RunHandle {
            prefix,
            table,
            spawn_queue,
            entry_names: Arc::new(self.registry.names()),
            registry: self.registry.id(),
            stage: 0,
            server: 0,
        };
        // Text still buffered for stdout would be written again by the server, and by every
        // stage forked from it, when they exit.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let namespace = PidNamespace::current();
        let server = match process::fork() {
            Ok(0) => {
                // Checked above: the server is in our namespace.
                if let Some(namespace) = namespace {
                    PidNamespace::set_current(namespace);
                }
                server::serve(handle, &self.registry, root)
            }
            Ok(pid) => {
                // The server stores it too, but a health check must not find 0 before it does.
                handle.table.header().server_pid.store(pid as u32, Ordering::Release);
                handle.server = pid as u32;
                pid
            }
            Err(e) => {
                let _ = cleanup::remove_run(handle.prefix.as_str());
                return Err(e);
            }
        };
        let signals = signals::install(server, &handle.table);
        Ok(Run { handle, server, keeper, finished: false, signals, _registry: self.registry, _active: active })
    }
}

/// A running run, owned by the root process. Dereferences to [`RunHandle`] for spawning,
/// making queues and joining.
///
/// [`finish`](Self::finish) ends it cleanly; dropping it without `finish` (an error, a panic)
/// kills every process of the run. Either way every segment of the run is removed.
pub struct Run {
    handle: RunHandle,
    server: libc::pid_t,
    /// Keeps the spawn queue open while the root lives; `finish` also wakes the server with it.
    keeper: shm_queue::Producer<SpawnRequest, Mpsc>,
    finished: bool,
    /// The root's signal dispositions from before the run.
    signals: signals::Installed,
    _registry: Registry,
    /// Last: released once everything above is done with.
    _active: ActiveRun,
}

/// Whether this process has a run between `start` and its end, which it or a process forked
/// from it (the server, a stage) would share its signal handlers and orphans with.
static RUN_ACTIVE: AtomicBool = AtomicBool::new(false);

/// This process's one run; the next may start once it is dropped. Also gives back the
/// subreaper role the run took, unless the process had it before.
struct ActiveRun {
    /// Whether the run made this process a subreaper (it was not one before).
    reaping: bool,
    was_subreaper: bool,
}

impl ActiveRun {
    fn claim() -> Result<Self, RuntimeError> {
        if RUN_ACTIVE.swap(true, Ordering::SeqCst) {
            return Err(RuntimeError::BadStart(
                "this process already has a run (a stage cannot start one, nor a root before its run's finish)",
            ));
        }
        let mut role: libc::c_int = 0;
        // SAFETY: PR_GET_CHILD_SUBREAPER writes an int through the pointer we pass.
        let asked = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut role as *mut libc::c_int, 0, 0, 0) };
        Ok(Self { reaping: false, was_subreaper: asked == 0 && role != 0 })
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if self.reaping && !self.was_subreaper {
            // Orphans of the caller's other work go to init again, as before the run.
            // SAFETY: prctl with these arguments only changes this process's reaping role.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
        }
        RUN_ACTIVE.store(false, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("handle", &self.handle).field("server", &self.server).finish_non_exhaustive()
    }
}

impl Deref for Run {
    type Target = RunHandle;
    fn deref(&self) -> &RunHandle {
        &self.handle
    }
}

impl Run {
    /// The fork server's pid.
    pub fn server_pid(&self) -> u32 {
        self.server as u32
    }

    /// Waits until every stage has ended, stops the fork server, removes every segment of
    /// the run, and reports the run's failure if there was one.
    ///
    /// # Errors
    /// `StageFailed` naming the first stage that failed, or `Interrupted(signal)`.
    pub fn finish(mut self) -> Result<(), RuntimeError> {
        self.finished = true;
        let header = self.handle.table.header();
        header.stop.store(1, Ordering::Release);
        crate::table::bump(&header.event, &header.event_waiters);
        // The server sleeps on the spawn queue between requests: wake it to see `stop`. (It
        // may have stopped taking requests if the run failed: then it is not asleep there.)
        let _ = self.keeper.try_push(SpawnRequest::wake());
        // The server exits once it has no children left.
        let status = wait_for_server(self.server);
        reap_orphans(&self.handle.table, self.server);
        let failure = self.handle.failure();
        signals::uninstall(&mut self.signals);
        cleanup::remove_run(self.handle.prefix.as_str()).ok();
        match (failure, status) {
            (Some(failure), _) => Err(failure),
            (None, Some(s)) if !s.success() => Err(RuntimeError::ServerGone),
            _ => Ok(()),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // An abnormal end: take everything down. Stages die with the server (pdeathsig) and,
        // as orphans, come back to us (subreaper) to be reaped.
        server::poison_run(self.handle.prefix.as_str());
        // SAFETY: our own unreaped child.
        unsafe { libc::kill(self.server, libc::SIGKILL) };
        wait_for_server(self.server);
        reap_orphans(&self.handle.table, self.server);
        signals::uninstall(&mut self.signals);
        cleanup::remove_run(self.handle.prefix.as_str()).ok();
    }
}

/// Whether another thread runs beside the caller for 20 ms: one just joined may still be on
/// its way out for a moment.
fn another_thread_stays() -> bool {
    for _ in 0..20 {
        if !other_threads_running() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Whether the children this process forks land in its own PID namespace (`false` after an
/// `unshare(CLONE_NEWPID)`); `true` where `/proc` cannot tell.
fn children_share_our_pid_namespace() -> bool {
    use std::os::unix::fs::MetadataExt;
    const LINK: &str = "/proc/self/ns/pid_for_children";
    match (std::fs::metadata(LINK), PidNamespace::current()) {
        (Ok(children), Some(ours)) => children.ino() == ours.as_raw(),
        // The link is there but leads nowhere: a namespace made by `unshare` that has no
        // process yet, so certainly not ours. (Kernels before 4.12 have no link at all.)
        (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => std::fs::symlink_metadata(LINK).is_err(),
        _ => true,
    }
}

/// Whether this process has a thread besides the caller that has not ended (a thread just
/// joined can linger in `/proc/self/task` for a moment as a zombie).
fn other_threads_running() -> bool {
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else { return false };
    let tids = threads.flatten().filter_map(|task| task.file_name().to_str()?.parse::<u32>().ok());
    tids.filter(|&tid| shm_queue::ProcessStatus::is_running(tid)).count() > 1
}

/// Blocks until the fork server `pid` (our child) ends; its status, or `None` if it was not
/// ours. Its pid is taken from the signal handlers between its end and its reaping, while the
/// pid cannot be reused yet: a Ctrl-C after that must not SIGTERM a stranger with that pid.
fn wait_for_server(pid: libc::pid_t) -> Option<crate::error::ExitStatus> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-buffer for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is a valid out-pointer; WNOWAIT leaves the child to be reaped below.
        let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    signals::forget_server();
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Some(process::decode_status(status));
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

/// Reaps stages orphaned by the server's death: they die by pdeathsig and come back to us,
/// the subreaper. Only the run's own stages are waited for (by pid, from the table), never other
/// children of the root; a pid that has become someone else's (neither the server's nor ours)
/// is not waited for. Bounded, so a stuck kernel cannot hang the root forever.
fn reap_orphans(table: &Table, server: libc::pid_t) {
    // SAFETY: getpid has no preconditions.
    let root = unsafe { libc::getpid() };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for id in 1..table.stage_end() {
        let Some(entry) = table.stage(id) else { continue };
        let pid = entry.pid.load(Ordering::Acquire) as libc::pid_t;
        if pid <= 0 || entry.state.load(Ordering::Acquire) == crate::table::state::EXITED {
            continue;
        }
        // The pid is read from shared memory, and a stage reaped by the server may have passed
        // it on: reap only the process that started when the stage did, never another child
        // of the root's caller (who would lose its exit status).
        let recorded = entry.start_time.load(Ordering::Acquire);
        let is_the_stage = || match shm_queue::ProcessStatus::read(pid as u32) {
            Some(status) => recorded == 0 || status.start_time == recorded,
            None => !shm_queue::ProcessStatus::readable(),
        };
        while is_the_stage() {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) } == pid {
                break;
            }
            match shm_queue::ProcessStatus::read(pid as u32).map(|status| status.parent as libc::pid_t) {
                Some(parent) if (parent == server || parent == root) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                _ => break,
            }
        }
    }
}
