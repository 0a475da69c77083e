//! The fork server: a small process forked when the run starts, which forks every stage.
//!
//! Why: in a chain where each process forks the next, fork gets slower with depth (the kernel's
//! anon_vma chains grow every generation: 2,000 generations took 63 s here, against well under
//! a second from one small process). Every stage is forked by the server, so every stage is two
//! forks from the root, and a stage's fork costs the same at any depth.
//!
//! The server is single-threaded: it pops spawn requests, forks, and reaps its children, which
//! it reports in the run table. When a stage fails it records the failure, poisons every queue
//! of the run (waking every sleeper), and kills the remaining stages.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shm_queue::{AttachError, ForkClock, Inspector, PidNamespace, PopError, ProcessId, PushError};

use crate::children::Children;
use crate::entry::Registry;
use crate::error::ExitStatus;
use crate::handle::RunHandle;
use crate::oom::{OomBias, OomKills};
use crate::process::{self, decode_status, exit_now};
use crate::request::SpawnRequest;
use crate::table::{exit_kind, sleep_on, state, StageId};

/// How often the server looks at its children and flags while no request comes.
const POLL: Duration = Duration::from_millis(20);
/// The same once the root has called `finish` (which wakes us with [`SpawnRequest::wake`]), and
/// while stages keep exiting: the root waits for us, so the last stages' exits must be noticed
/// at once, and a chain's stages end one after another. A SIGCHLD does not end a queue wait,
/// and one that lands between a reap and the next wait would otherwise cost a whole `POLL`, a
/// fifth of a small run's wall time.
const STOPPING_POLL: Duration = Duration::from_millis(1);

/// The fork server's process name, as `ps` shows it.
pub const SERVER_NAME: &str = "shmpipe-server";

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    TERMINATE.store(true, Ordering::SeqCst);
}

/// Pids of children whose SIGCHLD arrived, for the server to wait for by pid (0: empty slot).
/// Standard signals coalesce, so a pid can be missing here: the periodic scan catches those.
static CHILD_SIGNALS: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];
static CHILD_SIGNALS_NEXT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigchld(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Async-signal-safe: reads the siginfo the kernel passed, two atomic operations.
    if info.is_null() {
        return;
    }
    // SAFETY: a non-null siginfo from the kernel for SIGCHLD, which carries si_pid.
    let pid = unsafe { (*info).si_pid() };
    let slot = CHILD_SIGNALS_NEXT.fetch_add(1, Ordering::Relaxed) % CHILD_SIGNALS.len();
    CHILD_SIGNALS[slot].store(pid, Ordering::Release);
}

/// The stage's handle on its run, for the panic hook (null: not a stage). Set by `run_stage`
/// from a handle that lives until the process exits: `run_stage` never returns, so the frame
/// that owns it is never left.
static STAGE_RUN: AtomicPtr<RunHandle> = AtomicPtr::new(std::ptr::null_mut());

struct Server<'a> {
    run: RunHandle,
    registry: &'a Registry,
    /// The root's pid: while it is our parent, the root is alive.
    root: libc::pid_t,
    /// Living children, in memory they do not inherit (see `children`).
    children: Children,
    killed_all: bool,
    /// Children named by a SIGCHLD and not reaped yet.
    exiting: Vec<libc::pid_t>,
    /// When every child was last asked whether it has ended.
    last_scan: Instant,
    /// Some child's SIGCHLD came since the last look: more are likely (the stages of a chain end
    /// one after another), so look again after `STOPPING_POLL`, not `POLL`, instead of leaving
    /// them as zombies for `finish` to reap in series.
    exits_flowing: bool,
    /// Ranks stages before us for the OOM killer (see `oom`); `None` where it cannot.
    oom: Option<OomBias>,
    /// The kernel's OOM kills so far when we started.
    oom_kills: Option<OomKills>,
}

/// The server's life, in the forked child. Never returns.
pub(crate) fn serve(run: RunHandle, registry: &Registry, root: libc::pid_t) -> ! {
    process::set_name(SERVER_NAME);
    // The root handles Ctrl-C, Ctrl-\ and a hang-up for the whole run; the terminal sends them
    // to us all (and the stages we fork keep ignoring them). Left to their default, the last
    // two killed the server with the root, and nobody removed the run's segments.
    for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
        process::set_disposition(signal, libc::SIG_IGN);
    }
    process::set_handler(libc::SIGTERM, on_sigterm);
    process::set_info_handler(libc::SIGCHLD, on_sigchld);
    // The root's death (SIGKILL, a crash) comes as SIGTERM, handled above: then nobody else is
    // left to end the stages and remove the run's segments, and we do it (`main_loop`).
    if !process::signal_parent_death(root, libc::SIGTERM) {
        let _ = crate::cleanup::remove_run(run.prefix.as_str());
        exit_now(1);
    }
    install_panic_hook();
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    run.table.header().server_pid.store(me as u32, Ordering::Release);
    // Without its table the server cannot reap; the root then sees it gone and fails the run.
    let Ok(children) = Children::new() else { exit_now(2) };
    let mut server = Server {
        run,
        registry,
        children,
        root,
        killed_all: false,
        exiting: Vec::new(),
        last_scan: Instant::now(),
        exits_flowing: false,
        oom: OomBias::new(),
        oom_kills: OomKills::now(),
    };
    // A panic must end this process, not unwind into the root's frames that the fork copied
    // (its callers' destructors would run here, in the server or in a stage forked from it).
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.main_loop())).unwrap_or(101);
    exit_now(code)
}

impl Server<'_> {
    fn main_loop(&mut self) -> i32 {
        let mut requests = match self.run.spawn_queue.consumer() {
            Ok(c) => c,
            Err(_) => return 2,
        };
        loop {
            self.reap();
            if TERMINATE.load(Ordering::SeqCst) {
                // SAFETY: getppid has no preconditions.
                if unsafe { libc::getppid() } != self.root {
                    self.clean_up_after_the_root();
                }
                // The root was interrupted; it recorded why before signalling us.
                self.fail(0, 0, exit_kind::INTERRUPTED, libc::SIGTERM);
            }
            if self.run.table.failure().is_some() && !self.killed_all {
                self.kill_all();
            }
            let header = self.run.table.header();
            let stopping = header.stop.load(Ordering::Acquire) != 0;
            let poll = if stopping || self.exits_flowing { STOPPING_POLL } else { POLL };
            let next = if stopping && self.children.is_empty() {
                // Done, unless a request is still queued: one a stage sent just before it
                // returned, or the root just before `finish`. Its stage must run.
                match requests.try_pop() {
                    Ok(request) => Ok(request),
                    Err(_) => return 0,
                }
            } else {
                requests.pop_timeout(poll)
            };
            match next {
                Ok(request) if request.entry == SpawnRequest::WAKE => {}
                Ok(request) => self.start(&request),
                Err(PopError::Timeout) => {}
                Err(_) => {
                    // Poisoned (the run failed) or the root's keeper end died: nothing more
                    // will be asked; keep reaping until stopped.
                    let seen = header.event.load(Ordering::SeqCst);
                    sleep_on(&header.event, &header.event_waiters, seen, poll);
                }
            }
        }
    }

    /// The root died without ending the run (SIGKILL, a crash): fail the run, kill and reap
    /// every stage, remove the run's segments, and go. A root that dies so leaves nothing.
    fn clean_up_after_the_root(&mut self) -> ! {
        self.fail(0, 0, exit_kind::INTERRUPTED, libc::SIGKILL);
        while let Some(pid) = self.children.pid_at(0) {
            if self.wait_child(pid, 0) <= 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // Not ours to wait for after all (cannot happen): forget it rather than spin.
                self.children.remove(pid);
            }
        }
        let _ = crate::cleanup::remove_run(self.run.prefix.as_str());
        exit_now(1)
    }

    /// Forks one requested stage.
    fn start(&mut self, request: &crate::request::SpawnRequest) {
        let Some(entry) = self.run.table.stage(request.stage) else { return };
        let Some((_, run_entry)) = self.registry.get(request.entry) else {
            self.not_started(request.stage, 127, "no such entry point");
            return;
        };
        if self.run.table.failure().is_some() {
            entry.record_exit(state::EXITED, ExitStatus::Signal(libc::SIGKILL), None);
            return;
        }
        let args_len = (request.args_len as usize).min(request.args.len());
        // Our pid, taken before the fork: a child that asked getppid() instead could read its
        // new parent's (we may die in between) and then never notice that we did.
        // SAFETY: getpid has no preconditions.
        let server = unsafe { libc::getpid() };
        let namespace = PidNamespace::current();
        let clock = ForkClock::before_fork();
        match process::fork() {
            Ok(0) => {
                // The child is in our PID namespace (the run's start checked that the root
                // sends its children nowhere else): spares it a first `/proc` lookup.
                if let Some(namespace) = namespace {
                    PidNamespace::set_current(namespace);
                }
                run_stage(&mut self.run, request.stage, server, run_entry, &request.args[..args_len])
            }
            Ok(pid) => {
                if !self.children.insert(pid, request.stage) {
                    // Impossible (the table holds a child for every stage a run can have, and
                    // a living child's pid is unique), but a child we could not record would
                    // run unwatched: end it and reap it here.
                    let mut status = 0;
                    // SAFETY: our child, just forked and not reaped; status is a valid
                    // out-pointer.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut status, 0);
                    }
                    self.not_started(request.stage, 126, "the fork server's table of children is full");
                    return;
                }
                entry.pid.store(pid as u32, Ordering::Release);
                if entry
                    .state
                    .compare_exchange(state::REQUESTED, state::RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    crate::table::bump(&entry.seq, &entry.waiters);
                }
                // Tell the child its identity while it is still on its way (it starts tens of µs
                // after fork returns here): the first `/proc` read in a fresh process is slow,
                // and every stage needs its identity before it can attach to a queue. The clock
                // read around the fork usually gives it without reading `/proc` at all.
                if let Some(start_time) = clock.child_start_time(pid as u32) {
                    entry.start_time.store(start_time, Ordering::Release);
                }
                // Last: the child needs the rest sooner.
                if self.oom.as_ref().is_some_and(|bias| !bias.mark(pid)) {
                    self.oom = None;
                }
            }
            Err(error) => self.not_started(request.stage, 126, &error.to_string()),
        }
    }

    /// A requested stage that could not be started: fails the run, then records the stage's
    /// exit — in this order, so that a joiner woken by the exit finds the failure, with its
    /// reason.
    fn not_started(&mut self, stage: StageId, code: i32, reason: &str) {
        self.fail_because(stage, 0, exit_kind::CODE, code, reason);
        if let Some(entry) = self.run.table.stage(stage) {
            entry.record_exit(state::EXITED, ExitStatus::Code(code), None);
        }
    }

    /// Collects every child that has ended, records how, and fails the run on a failure.
    ///
    /// `waitpid(-1)` walks the list of every child each time (~1 µs a child here), and it walks
    /// it again for every zombie it returns: with 10,000 stages alive, calling it on every
    /// request took 41 % of a run's CPU, and reaping the thousands whose SIGCHLDs coalesced at
    /// the end of a run still took 15 %. So it is never called: children are waited for by pid
    /// (one lookup each) when their SIGCHLD named them, and to catch a death whose signal
    /// coalesced with another, all are asked by pid in turn every `POLL` per 200 children (at
    /// least every `POLL`: 1 s with 10,000 stages), or at once while stopping.
    fn reap(&mut self) {
        self.exits_flowing = false;
        for slot in &CHILD_SIGNALS {
            let pid = slot.swap(0, Ordering::AcqRel);
            if pid <= 0 {
                continue;
            }
            self.exits_flowing = true;
            if self.children.contains(pid) && !self.exiting.contains(&pid) {
                self.exiting.push(pid);
            }
        }
        for pid in std::mem::take(&mut self.exiting) {
            if self.wait_child(pid, libc::WNOHANG) == 0 {
                self.exiting.push(pid); // not ended yet
            }
        }
        let stopping = self.run.table.header().stop.load(Ordering::Acquire) != 0;
        let interval = POLL * (self.children.len() / 200).max(1) as u32;
        if !stopping && self.last_scan.elapsed() < interval {
            return;
        }
        self.last_scan = Instant::now();
        // While stopping, those that recorded their exit in the table are waited for outright:
        // they are past their entry, on their way out, and the root is waiting for us anyway
        // (a 1 ms poll per exit was most of `finish`).
        // From the end: reaping one moves the last child into its place, already seen.
        for position in (0..self.children.len()).rev() {
            let Some(pid) = self.children.pid_at(position) else { continue };
            let Some(stage) = self.children.stage_of(pid) else { continue };
            let announced =
                || self.run.table.stage(stage).is_some_and(|e| e.state.load(Ordering::Acquire) == state::EXITING);
            let flags = if stopping && announced() { 0 } else { libc::WNOHANG };
            self.wait_child(pid, flags);
        }
    }

    /// `waitpid(pid, flags)`, recording the child it returns; returns what waitpid did.
    fn wait_child(&mut self, pid: libc::pid_t, flags: libc::c_int) -> libc::pid_t {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer; `pid` is a child of ours.
        let ended = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ended > 0 {
            self.exiting.retain(|&p| p != ended);
            self.ended(ended, status);
        }
        ended
    }

    /// Records how child `pid` ended, and fails the run if it failed.
    fn ended(&mut self, pid: libc::pid_t, status: libc::c_int) {
        let Some(stage) = self.children.remove(pid) else { return };
        let exit = decode_status(status);
        // The stage's own record wins for codes (it may have said 1 before exiting).
        let ending = self
            .run
            .table
            .stage(stage)
            .map(|entry| (entry.status_once_reaped(exit), entry.kill_requested.load(Ordering::Acquire) != 0));
        if let Some((status, kill_requested)) = ending.filter(|(status, _)| !status.success()) {
            let (kind, value) = exit_kind::of(status);
            // A SIGKILL neither we nor a `StageHandle::kill` sent: the OOM killer's, if it has
            // been at work.
            let reason = (status == ExitStatus::Signal(libc::SIGKILL) && !self.killed_all && !kill_requested)
                .then(|| self.oom_kills.as_ref().and_then(OomKills::reason_since))
                .flatten()
                .unwrap_or_default();
            // Before the exit: a joiner woken by the exit must find the run's failure, with its
            // reason, rather than make up one without.
            self.fail_because(stage, pid as u32, kind, value, &reason);
        }
        if let Some(entry) = self.run.table.stage(stage) {
            entry.record_exit(state::EXITED, exit, None);
        }
        let header = self.run.table.header();
        crate::table::bump(&header.event, &header.event_waiters);
    }

    /// Records the run's first failure, poisons every queue of the run, kills every stage.
    fn fail(&mut self, stage: StageId, pid: u32, kind: u32, value: i32) {
        self.fail_because(stage, pid, kind, value, "");
    }

    /// [`fail`](Self::fail), saying why.
    fn fail_because(&mut self, stage: StageId, pid: u32, kind: u32, value: i32, reason: &str) {
        // Another failure may have come first. If its recorder (a stage, or the root's signal
        // handler) is still writing it, it finishes before we kill every stage; if it never
        // does, ours replaces its claim (and the next call does not wait again).
        self.run.table.record_failure_or_take_over(stage, pid, kind, value, reason);
        // Once is enough: the stages we kill come back through here as failures too.
        if !self.killed_all {
            self.kill_all();
        }
    }

    fn kill_all(&mut self) {
        poison_run(self.run.prefix.as_str());
        for pid in (0..self.children.len()).filter_map(|position| self.children.pid_at(position)) {
            // SAFETY: an unreaped child of ours: its pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        self.killed_all = true;
    }
}

/// Poisons every queue whose name starts with `prefix`, waking all their sleepers. All are
/// opened first and then poisoned at once: a stage woken by one queue's poisoning that gives
/// up and closes its output must not let that output's consumer see a mere close.
pub(crate) fn poison_run(prefix: &str) {
    // Without waiting on a queue left half-made by a creator we killed: nobody can be attached
    // to it (waiting for one cost a failed run a whole second, now and then).
    let queues: Vec<Inspector> =
        shm_queue::list(prefix).unwrap_or_default().iter().filter_map(|name| Inspector::open_now(name).ok()).collect();
    Inspector::poison_all(&queues);
}

/// A stage's life, in a child of the server. Never returns.
fn run_stage(
    run: &mut RunHandle,
    stage: StageId,
    server: libc::pid_t,
    entry: &dyn Fn(&RunHandle, &[u8]) -> crate::error::StageResult,
    args: &[u8],
) -> ! {
    process::die_with_parent(server);
    process::set_disposition(libc::SIGCHLD, libc::SIG_DFL);
    process::set_disposition(libc::SIGTERM, libc::SIG_DFL);
    TERMINATE.store(false, Ordering::SeqCst);
    run.stage = stage;
    // `ps` then tells stages from the server and the root, and entries from each other.
    process::set_name(run.entry_name(stage));
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u32;
    if let Some(slot) = run.table.stage(stage) {
        slot.pid.store(me, Ordering::Release);
        // The server has usually read our start time by now; if not, the first queue we
        // attach to reads it from /proc.
        let start_time = slot.start_time.load(Ordering::Acquire);
        if start_time != 0 {
            ProcessId::set_current(ProcessId { pid: me, start_time });
        }
        if slot.state.compare_exchange(state::REQUESTED, state::RUNNING, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            crate::table::bump(&slot.seq, &slot.waiters);
        }
    }
    // Only shared borrows from here on: the panic hook reads the handle through STAGE_RUN.
    let run: &RunHandle = run;
    STAGE_RUN.store(std::ptr::from_ref(run).cast_mut(), Ordering::SeqCst);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(run, args)));
    let (code, result, reason) = match outcome {
        Ok(Ok(value)) => (0, value, String::new()),
        Ok(Err(error)) => {
            if is_a_consequence(&*error) {
                // Gives the failure behind it the chance to be recorded first.
                let _ = run.wait_failure(CAUSE_WAIT);
            }
            (1, 0, error.to_string())
        }
        Err(_) => (101, 0, PANIC_REASON.lock().map(|mut r| r.take().unwrap_or_default()).unwrap_or_default()),
    };
    if code != 0 {
        // Fail the run now rather than when the server reaps us, with what went wrong: the
        // root reports it, in one line. A stage failing because the run already failed (its
        // queues were poisoned) is a consequence, not news: only the first failure is kept.
        run.table.record_failure_or_take_over(stage, me, exit_kind::CODE, code, &reason);
    }
    if let Some(slot) = run.table.stage(stage) {
        slot.record_exit(state::EXITING, ExitStatus::Code(code), Some(result));
    }
    exit_now(code)
}

/// How long a stage whose queue broke under it waits for the failure that broke it.
const CAUSE_WAIT: Duration = Duration::from_millis(500);

/// Whether a stage's error says only that a queue was closed or broken under it (its
/// consumers left, a peer died, the run poisoned it): shm-queue's `PopError`, `PushError<()>`
/// (see `without_item`) or `AttachError` anywhere in the error's chain of sources. Such a
/// stage usually fails because another has just failed: that one's drops closed the queue a
/// moment before it could record why.
fn is_a_consequence(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        e.downcast_ref::<PopError>()
            .is_some_and(|e| matches!(e, PopError::Disconnected | PopError::Poisoned | PopError::PeerDead { .. }))
            || e.downcast_ref::<PushError<()>>().is_some_and(|e| {
                matches!(e, PushError::Disconnected(()) | PushError::Poisoned(()) | PushError::PeerDead { .. })
            })
            || e.downcast_ref::<AttachError>()
                .is_some_and(|e| matches!(e, AttachError::Closed { .. } | AttachError::Poisoned))
    })
}

/// The message and place of a stage's last panic, for its failure record.
static PANIC_REASON: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// No backtrace banner for a stage's panic. A panic on any of a stage's threads fails the run,
/// and is recorded as its failure here, before unwinding drops the queue ends the thread holds
/// (which poisons their queues): a peer woken by that poison then finds the cause already
/// recorded, instead of taking the blame itself or racing the record. The message goes with
/// the failure to the root, which reports it in one line.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let run = STAGE_RUN.load(Ordering::SeqCst);
        if run.is_null() {
            previous(info);
            return;
        }
        // SAFETY: see STAGE_RUN: a handle that lives until this process exits, only ever
        // borrowed shared once stored there (and `RunHandle` is `Sync`).
        let run = unsafe { &*run };
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let thread = std::thread::current();
        let reason = match thread.name() {
            Some("main") => format!("panicked{location}: {message}"),
            Some(name) => format!("thread '{name}' panicked{location}: {message}"),
            None => format!("a thread panicked{location}: {message}"),
        };
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        run.table.record_failure_or_take_over(run.stage, pid, exit_kind::CODE, 101, &reason);
        if let Ok(mut kept) = PANIC_REASON.lock() {
            *kept = Some(reason);
        }
    }));
}
