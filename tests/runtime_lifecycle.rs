//! The runtime across real processes: spawn, join, nested spawns, handover, failure, signals,
//! and cleanup. Every case runs in its own forked process (see `support`).

// The harness of shm-queue's multi-process tests: one forked process per case, checked for
// leftover processes and segments (including `/shmpipe.<case pid>.*`).
#[path = "../shm-queue/tests/support/mod.rs"]
#[macro_use]
mod support;

use std::time::Duration;

#[path = "../sieve/tests/support/limited_cgroup.rs"]
mod limited_cgroup;

use limited_cgroup::LimitedCgroup;

use bytemuck::{Pod, Zeroable};
use runtime::{Entry, ExitStatus, QueueName, RunHandle, Runtime, RuntimeError, StageResult};
use shm_queue::{Handover, PopError, Queue, QueueOptions, Spsc};

fn main() {
    if let Some(queue) = std::env::args().skip_while(|a| a != PEER_FLAG).nth(1) {
        pid_namespace_peer(&queue);
    }
    support::main(cases![
        spawn_then_join_returns_the_entry_result,
        an_entry_of_another_builder_is_refused,
        a_run_refuses_to_start_beside_another_thread,
        stage_error_fails_the_run_naming_the_stage,
        stage_panic_fails_the_run_with_code_101,
        a_panic_mid_stream_is_the_failure_its_consumer_finds,
        the_run_reports_the_failure_that_broke_a_queue_not_the_stage_it_broke,
        chain_of_1000_stages_each_spawning_the_next_passes_a_token,
        writing_end_handed_over_through_three_generations_delivers_everything_once,
        kill_9_of_a_middle_stage_ends_the_run_naming_it_and_leaves_nothing,
        sigint_to_the_root_interrupts_the_run_and_cleans_up,
        fork_server_killed_while_the_root_joins_ends_the_join_with_server_gone,
        root_sigkilled_takes_its_stages_down_and_its_server_removes_the_segments,
        root_and_server_sigkilled_leave_segments_that_are_recognised_as_stale,
        many_stages_from_the_root_all_run_and_join,
        every_stage_knows_its_own_identity_as_proc_has_it,
        ps_shows_the_server_and_each_stage_by_name,
        stages_go_before_the_root_and_the_server_when_memory_runs_out,
        a_stage_the_oom_killer_ends_is_reported_as_out_of_memory,
        a_run_and_a_queue_of_another_pid_namespace_are_neither_cleaned_nor_opened,
        a_pid_namespace_killed_outright_leaves_nothing_the_host_keeps,
        a_root_whose_children_go_to_another_pid_namespace_cannot_start_a_run,
        a_stage_requested_just_before_finish_still_runs,
        one_run_at_a_time_and_none_from_a_stage,
        a_stage_cannot_join_itself,
        text_buffered_for_stdout_before_the_start_is_written_once,
        the_roots_signal_dispositions_are_its_own_again_after_the_run,
        a_failure_whose_recorder_never_finished_is_still_reported,
        the_root_judges_its_server_by_the_pid_it_forked_not_the_tables,
        a_dead_run_of_another_pid_namespace_is_removed_only_from_the_hosts,
    ]);
}

/// Entries in /dev/shm whose names contain `needle`.
fn shm_entries_containing(needle: &str) -> Vec<String> {
    shm_queue::list("").unwrap_or_default().into_iter().filter(|n| n.contains(needle)).collect()
}

fn answer(_run: &RunHandle, n: u64) -> StageResult {
    Ok(n + 1)
}

fn spawn_then_join_returns_the_entry_result() {
    let mut rt = Runtime::builder();
    let answer = rt.register("answer", answer);
    let run = rt.start().unwrap();
    let stage = run.spawn(answer, &41u64).unwrap();
    assert!(stage.pid().unwrap() > 0);
    let exit = stage.join().unwrap();
    assert_eq!(exit.status, ExitStatus::Code(0));
    assert_eq!(exit.result, 42);
    let prefix = run.prefix().to_owned();
    run.finish().unwrap();
    assert!(shm_queue::list(&prefix).unwrap().is_empty(), "finish removes every segment");
}

fn ten_times(_run: &RunHandle, n: u64) -> StageResult {
    Ok(n * 10)
}

/// An entry point of another builder names another function by its index in this run (here
/// both are index 0 and take a u64): `spawn` refuses it rather than run the wrong function.
fn an_entry_of_another_builder_is_refused() {
    let mut other = Runtime::builder();
    let foreign = other.register("ten_times", ten_times);
    let mut rt = Runtime::builder();
    let answer = rt.register("answer", answer);
    let run = rt.start().unwrap();
    match run.spawn(foreign, &5u64) {
        Err(e @ RuntimeError::ForeignEntry { index: 0 }) => {
            assert_eq!(e.to_string(), "entry point 0 was not registered with this run's Runtime builder")
        }
        Err(e) => panic!("expected ForeignEntry, got {e}"),
        Ok(stage) => panic!("ran another builder's entry point: {:?}", stage.join()),
    }
    // The run is not harmed: its own entry still runs.
    assert_eq!(run.spawn(answer, &41u64).unwrap().join().unwrap().result, 42);
    run.finish().unwrap();
}

fn fail(_run: &RunHandle, _: u64) -> StageResult {
    Err("the input was bad".into())
}

/// A run cannot start from a process with a second thread (fork would copy only this one,
/// and any lock the other holds would stay held in every stage); once it is gone, it can.
fn a_run_refuses_to_start_beside_another_thread() {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || stop_rx.recv().ok());
    let mut rt = Runtime::builder();
    rt.register("answer", answer);
    match rt.start() {
        Err(RuntimeError::BadStart(why)) => assert!(why.contains("more than one thread"), "{why}"),
        Err(e) => panic!("expected BadStart, got {e}"),
        Ok(_) => panic!("a run started beside another thread"),
    }
    stop_tx.send(()).unwrap();
    other.join().unwrap();
    a_run_starts_and_a_stage_answers();
}

/// Starts a run, has a stage answer, finishes it.
fn a_run_starts_and_a_stage_answers() {
    let mut rt = Runtime::builder();
    let answer = rt.register("answer", answer);
    let run = rt.start().unwrap();
    assert_eq!(run.spawn(answer, &1u64).unwrap().join().unwrap().result, 2);
    run.finish().unwrap();
}

fn stage_error_fails_the_run_naming_the_stage() {
    let mut rt = Runtime::builder();
    let fail = rt.register("failing-stage", fail);
    let run = rt.start().unwrap();
    let stage = run.spawn(fail, &0u64).unwrap();
    let id = stage.id();
    let pid = stage.pid().unwrap();
    match stage.join() {
        Err(RuntimeError::StageFailed { stage, entry, pid: p, status, reason }) => {
            assert_eq!((stage, entry.as_str(), p, status), (id, "failing-stage", pid, ExitStatus::Code(1)));
            assert_eq!(reason.as_deref(), Some("the input was bad"), "the stage's error travels with the failure");
        }
        other => panic!("expected StageFailed, got {other:?}"),
    }
    let err = run.finish().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("stage {id} (failing-stage, pid {pid}) failed: exit code 1: the input was bad")
    );
}

/// Pushes into its output until that fails (its consumer left): a consequence, not a cause.
fn pusher(_run: &RunHandle, args: PassArgs) -> StageResult {
    let mut tx = Queue::<u64, Spsc>::open(args.output.as_str())?.producer()?;
    loop {
        tx.push(1).map_err(|e| e.without_item())?;
    }
}

/// Leaves its input (closing it for the pusher), takes its time, then fails: the cause.
fn leaver(_run: &RunHandle, args: PassArgs) -> StageResult {
    let rx = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?;
    drop(rx);
    std::thread::sleep(Duration::from_millis(50));
    Err("the real reason".into())
}

/// A stage that fails closes its queues as it returns, and a neighbour then fails on the
/// closed queue, often first. The run must report the cause, not the consequence.
fn the_run_reports_the_failure_that_broke_a_queue_not_the_stage_it_broke() {
    let mut rt = Runtime::builder();
    let pusher = rt.register("pusher", pusher);
    let leaver = rt.register("leaver", leaver);
    let run = rt.start().unwrap();
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(8)).unwrap();
    let consequence = run.spawn(pusher, &PassArgs { input: name, output: name }).unwrap();
    let cause = run.spawn(leaver, &PassArgs { input: name, output: name }).unwrap();
    let cause_id = cause.id();
    match cause.join() {
        Err(RuntimeError::StageFailed { stage, reason, .. }) => {
            assert_eq!((stage, reason.as_deref()), (cause_id, Some("the real reason")));
        }
        other => panic!("expected the leaver's failure, got {other:?}"),
    }
    drop((consequence, queue));
    assert!(run.finish().is_err());
}

fn boom(_run: &RunHandle, _: u64) -> StageResult {
    panic!("boom");
}

fn stage_panic_fails_the_run_with_code_101() {
    let mut rt = Runtime::builder();
    let boom = rt.register("boom", boom);
    let run = rt.start().unwrap();
    let stage = run.spawn(boom, &0u64).unwrap();
    match stage.join() {
        Err(RuntimeError::StageFailed { status: ExitStatus::Code(101), reason: Some(reason), .. }) => {
            assert!(reason.starts_with("panicked at tests/runtime_lifecycle.rs:"), "{reason}");
            assert!(reason.ends_with(": boom"), "{reason}");
        }
        other => panic!("expected StageFailed with the panic's message, got {other:?}"),
    }
    assert!(run.finish().is_err());
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct PanicArgs {
    output: QueueName,
    /// 0: panic on the stage's main thread; otherwise on a thread of its own.
    on_thread: u32,
}

/// Pushes 3 items into `output`, then panics holding its end: on its main thread, or on a
/// thread it started (whose panic the stage itself would shrug off, returning `Ok`).
fn panics_mid_stream(_run: &RunHandle, args: PanicArgs) -> StageResult {
    let produce = move || -> StageResult {
        let mut tx = Queue::<u64, Spsc>::open(args.output.as_str())?.producer()?;
        for i in 0..3 {
            tx.push(i)?;
        }
        panic!("gives up mid-stream");
    };
    if args.on_thread == 0 {
        return produce();
    }
    let worker = std::thread::Builder::new().name("worker".into()).spawn(produce)?;
    let _ = worker.join();
    Ok(0)
}

/// A stage that panics mid-stream, on any of its threads: the consumer downstream (here the
/// root) finds the queue poisoned, not closed, and the run's failure names the panic at once,
/// without waiting: it was recorded before the unwinding dropped the end and poisoned the queue.
fn a_panic_mid_stream_is_the_failure_its_consumer_finds() {
    for (on_thread, expected) in [(0, "panicked at tests/runtime_lifecycle.rs:"), (1, "thread 'worker' panicked at")] {
        let mut rt = Runtime::builder();
        let panics = rt.register("panics_mid_stream", panics_mid_stream);
        let run = rt.start().unwrap();
        let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(64)).unwrap();
        let mut rx = queue.consumer().unwrap();
        let stage = run.spawn(panics, &PanicArgs { output: name, on_thread }).unwrap().id();
        let broken = loop {
            if let Err(e) = rx.pop() {
                break e;
            }
        };
        assert_eq!(broken, PopError::Poisoned, "a cut-short stream is not a closed one");
        match run.failure() {
            Some(RuntimeError::StageFailed { stage: failed, reason: Some(reason), .. }) => {
                assert_eq!(failed, stage);
                assert!(reason.starts_with(expected) && reason.ends_with(": gives up mid-stream"), "{reason}");
            }
            other => panic!("on thread {on_thread}: the failure is not the panic: {other:?}"),
        }
        drop((rx, queue));
        assert!(run.finish().is_err());
    }
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct ChainArgs {
    input: QueueName,
    next: Entry<ChainArgs>,
    remaining: u32,
}

/// Reads a token, passes token + 1 to a stage it spawns (while `remaining` > 0), returns the
/// token that comes back from the end of the chain.
fn chain_link(run: &RunHandle, args: ChainArgs) -> StageResult {
    let token = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?.pop()?;
    if args.remaining == 0 {
        return Ok(token);
    }
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(1))?;
    let child = run.spawn(args.next, &ChainArgs { input: name, next: args.next, remaining: args.remaining - 1 })?;
    queue.producer()?.push(token + 1)?;
    Ok(child.join()?.result)
}

fn chain_of_1000_stages_each_spawning_the_next_passes_a_token() {
    let mut rt = Runtime::builder();
    let link = rt.register("link", chain_link);
    let run = rt.start().unwrap();
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(1)).unwrap();
    let first = run.spawn(link, &ChainArgs { input: name, next: link, remaining: 999 }).unwrap();
    queue.producer().unwrap().push(1).unwrap();
    assert_eq!(first.join().unwrap().result, 1000, "the token went through 1000 stages");
    run.finish().unwrap();
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct RelayArgs {
    queue: QueueName,
    token: Handover,
    next: Entry<RelayArgs>,
    generation: u32,
}

const PER_GENERATION: u64 = 10_000;

/// Adopts the writing end, pushes its range, hands the end on to the next generation.
fn relay(run: &RunHandle, args: RelayArgs) -> StageResult {
    let queue = Queue::<u64, Spsc>::open(args.queue.as_str())?;
    let mut tx = queue.adopt_producer(args.token)?;
    let base = u64::from(args.generation) * PER_GENERATION;
    for i in 0..PER_GENERATION {
        tx.push(base + i)?;
    }
    if args.generation == 3 {
        return Ok(0); // dropping the last end closes the queue
    }
    let token = tx.into_handover();
    let child = run.spawn(args.next, &RelayArgs { token, generation: args.generation + 1, ..args })?;
    child.join()?;
    Ok(0)
}

fn writing_end_handed_over_through_three_generations_delivers_everything_once() {
    let mut rt = Runtime::builder();
    let relay = rt.register("relay", relay);
    let run = rt.start().unwrap();
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(64)).unwrap();
    let mut rx = queue.consumer().unwrap();
    let token = queue.producer().unwrap().into_handover();
    let first = run.spawn(relay, &RelayArgs { queue: name, token, next: relay, generation: 1 }).unwrap();
    let mut expected = PER_GENERATION;
    loop {
        match rx.pop() {
            Ok(v) => {
                assert_eq!(v, expected, "every item once, in order");
                expected += 1;
            }
            Err(PopError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(expected, 4 * PER_GENERATION, "three generations delivered");
    first.join().unwrap();
    run.finish().unwrap();
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct PassArgs {
    input: QueueName,
    output: QueueName,
}

fn pass(_run: &RunHandle, args: PassArgs) -> StageResult {
    let mut rx = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?;
    let mut tx = Queue::<u64, Spsc>::open(args.output.as_str())?.producer()?;
    loop {
        match rx.pop() {
            Ok(v) => tx.push(v)?,
            Err(PopError::Disconnected) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

fn kill_9_of_a_middle_stage_ends_the_run_naming_it_and_leaves_nothing() {
    let mut rt = Runtime::builder();
    let pass = rt.register("pass", pass);
    let run = rt.start().unwrap();
    let queues: Vec<_> = (0..4).map(|_| run.create_queue::<u64, Spsc>(QueueOptions::new(8)).unwrap()).collect();
    let stages: Vec<_> =
        (0..3).map(|i| run.spawn(pass, &PassArgs { input: queues[i].1, output: queues[i + 1].1 }).unwrap()).collect();
    let mut tx = queues[0].0.producer().unwrap();
    let mut rx = queues[3].0.consumer().unwrap();
    tx.push(1).unwrap();
    assert_eq!(rx.pop().unwrap(), 1, "the chain is running");
    let victim = &stages[1];
    let (victim_id, victim_pid) = (victim.id(), victim.pid().unwrap());
    victim.kill().unwrap();
    // The sink's consumer (asleep on empty) is woken by the poisoning.
    assert!(matches!(rx.pop_timeout(Duration::from_secs(30)), Err(PopError::Poisoned | PopError::PeerDead { .. })));
    let server = run.server_pid();
    let prefix = run.prefix().to_owned();
    drop((tx, rx, queues, stages));
    match run.finish() {
        Err(RuntimeError::StageFailed { stage, pid, status, .. }) => {
            assert_eq!((stage, pid, status), (victim_id, victim_pid, ExitStatus::Signal(libc::SIGKILL)));
        }
        other => panic!("expected the killed stage to be named, got {other:?}"),
    }
    assert!(support::children_of(std::process::id()).is_empty(), "no process of the run is left");
    assert!(support::children_of(server).is_empty());
    assert!(shm_queue::list(&prefix).unwrap().is_empty(), "no segment of the run is left");
}

fn sleeper(_run: &RunHandle, args: PassArgs) -> StageResult {
    // Blocks until the run is torn down.
    let mut rx = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?;
    rx.pop()?;
    Ok(0)
}

/// The fork server SIGKILLed while the root waits to join a stage: the stage dies with the
/// server and nobody records its end; the join says so instead of waiting forever.
fn fork_server_killed_while_the_root_joins_ends_the_join_with_server_gone() {
    let mut rt = Runtime::builder();
    let sleeper = rt.register("sleeper", sleeper);
    let run = rt.start().unwrap();
    let (queue, stage, tx) = a_sleeping_stage(&run, sleeper);
    // SAFETY: kill with integer arguments; the server is our child, not yet reaped.
    unsafe { libc::kill(run.server_pid() as libc::pid_t, libc::SIGKILL) };
    let joined = stage.join();
    assert!(matches!(joined, Err(RuntimeError::ServerGone)), "{joined:?}");
    let prefix = run.prefix().to_owned();
    drop((tx, queue));
    let finished = run.finish();
    assert!(matches!(finished, Err(RuntimeError::ServerGone)), "{finished:?}");
    assert!(shm_queue::list(&prefix).unwrap().is_empty());
}

/// A `sleeper` stage, started, blocked on an empty queue whose writing end we hold.
fn a_sleeping_stage<'r>(
    run: &'r runtime::Run,
    sleeper: Entry<PassArgs>,
) -> (Queue<u64, Spsc>, runtime::StageHandle<'r>, shm_queue::Producer<u64, Spsc>) {
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(8)).unwrap();
    let stage = run.spawn(sleeper, &PassArgs { input: name, output: name }).unwrap();
    stage.pid().unwrap();
    let tx = queue.producer().unwrap();
    (queue, stage, tx)
}

fn sigint_to_the_root_interrupts_the_run_and_cleans_up() {
    // A root that ignores SIGINT keeps ignoring it (a shell's background job does, and so may
    // this case's process, started from one): this root is one that does not.
    // SAFETY: setting a disposition, no handler.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let mut rt = Runtime::builder();
    let sleeper = rt.register("sleeper", sleeper);
    let run = rt.start().unwrap();
    let (queue, stage, _tx) = a_sleeping_stage(&run, sleeper);
    // SAFETY: signalling ourselves; the run's handler records it.
    unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
    assert!(matches!(run.wait_failure(Duration::from_secs(30)), Some(RuntimeError::Interrupted(libc::SIGINT))));
    // Once recorded, the failure comes back at once, whatever the timeout (`Duration::MAX`
    // used to overflow the deadline and panic).
    assert!(matches!(run.wait_failure(Duration::MAX), Some(RuntimeError::Interrupted(libc::SIGINT))));
    let prefix = run.prefix().to_owned();
    drop((_tx, queue, stage));
    assert!(matches!(run.finish(), Err(RuntimeError::Interrupted(libc::SIGINT))));
    assert!(shm_queue::list(&prefix).unwrap().is_empty());
}

/// Forks a root that starts a run with three sleeping stages and then waits forever; returns
/// its pid and those of its fork server and stages.
fn a_root_with_sleeping_stages() -> (libc::pid_t, [u32; 4]) {
    let (read_fd, write_fd) = {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid out-array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    };
    // SAFETY: this case process is single-threaded.
    let root = unsafe { libc::fork() };
    if root == 0 {
        let mut rt = Runtime::builder();
        let sleeper = rt.register("sleeper", sleeper);
        let run = rt.start().unwrap();
        let queues: Vec<_> = (0..3).map(|_| run.create_queue::<u64, Spsc>(QueueOptions::new(8)).unwrap()).collect();
        let _producers: Vec<_> = queues.iter().map(|(q, _)| q.producer().unwrap()).collect();
        let stages: Vec<u32> = queues
            .iter()
            .map(|(_, name)| run.spawn(sleeper, &PassArgs { input: *name, output: *name }).unwrap().pid().unwrap())
            .collect();
        let mut report = vec![run.server_pid()];
        report.extend(stages);
        // SAFETY: writing our pids to the pipe; a pipe write of < PIPE_BUF bytes is atomic.
        unsafe { libc::write(write_fd, report.as_ptr().cast(), report.len() * 4) };
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let mut pids = [0u32; 4];
    // SAFETY: reading into a buffer of the right size.
    let n = unsafe { libc::read(read_fd, pids.as_mut_ptr().cast(), 16) };
    assert_eq!(n, 16);
    assert!(!shm_entries_containing(&format!("shmpipe.{root}.")).is_empty(), "the run has segments");
    (root, pids)
}

/// Waits (the case watchdog bounds it) until none of `pids` can run any more.
fn wait_until_all_ended(pids: &[u32]) {
    while pids.iter().any(|&p| shm_queue::ProcessStatus::read(p).is_some_and(|s| !s.has_ended())) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILL of the root: its fork server hears of it (its parent-death signal), kills and
/// reaps the stages and removes the run's segments. Nothing is left, without another run.
fn root_sigkilled_takes_its_stages_down_and_its_server_removes_the_segments() {
    let (root, pids) = a_root_with_sleeping_stages();
    let prefix = format!("shmpipe.{root}.");
    // SAFETY: our child.
    unsafe { libc::kill(root, libc::SIGKILL) };
    // SAFETY: reaping our child.
    unsafe { libc::waitpid(root, std::ptr::null_mut(), 0) };
    wait_until_all_ended(&pids);
    // The server removes the segments after its last stage is reaped, before it exits.
    assert!(shm_entries_containing(&prefix).is_empty(), "left: {:?}", shm_entries_containing(&prefix));
}

/// SIGKILL of the root and its server at once: nobody of the run is left to clean up. The
/// stages die with the server; the next run's start (or `shmq clean`) removes what is left.
fn root_and_server_sigkilled_leave_segments_that_are_recognised_as_stale() {
    let (root, pids) = a_root_with_sleeping_stages();
    let prefix = format!("shmpipe.{root}.");
    // SAFETY: our child and its child.
    unsafe {
        libc::kill(pids[0] as libc::pid_t, libc::SIGKILL);
        libc::kill(root, libc::SIGKILL);
        libc::waitpid(root, std::ptr::null_mut(), 0);
    }
    wait_until_all_ended(&pids);
    let stale = runtime::find_stale().unwrap();
    assert!(stale.removed.iter().any(|n| n.contains(&prefix)), "the leftovers are recognised as stale");
    runtime::remove_stale().unwrap();
    assert!(shm_entries_containing(&prefix).is_empty(), "cleanup removed them");
}

fn many_stages_from_the_root_all_run_and_join() {
    let mut rt = Runtime::builder();
    let answer = rt.register("answer", answer);
    let run = rt.start().unwrap();
    let stages: Vec<_> = (0..500u64).map(|i| run.spawn(answer, &i).unwrap()).collect();
    for (i, stage) in stages.into_iter().enumerate() {
        assert_eq!(stage.join().unwrap().result, i as u64 + 1);
    }
    run.finish().unwrap();
}

/// 1 when this process's identity and PID namespace (which the fork server supplies) are
/// what /proc says.
fn identity_check(_run: &RunHandle, _: u64) -> StageResult {
    use std::os::unix::fs::MetadataExt;
    let me = shm_queue::ProcessId::current();
    let status = shm_queue::ProcessStatus::read(std::process::id()).ok_or("no /proc entry for myself")?;
    let namespace = std::fs::metadata("/proc/self/ns/pid")?.ino();
    let told = shm_queue::PidNamespace::current().map(|n| n.as_raw());
    Ok(u64::from(
        me.pid == std::process::id() && me.start_time == status.start_time && me.is_alive() && told == Some(namespace),
    ))
}

fn every_stage_knows_its_own_identity_as_proc_has_it() {
    let mut rt = Runtime::builder();
    let check = rt.register("identity", identity_check);
    let run = rt.start().unwrap();
    let stages: Vec<_> = (0..50).map(|_| run.spawn(check, &0u64).unwrap()).collect();
    for stage in stages {
        let id = stage.id();
        assert_eq!(stage.join().unwrap().result, 1, "stage {id} has a wrong identity");
    }
    run.finish().unwrap();
}

/// 1 if this process's name, as /proc has it, is the entry's name cut to the kernel's 15 bytes.
fn name_check(_run: &RunHandle, _: u64) -> StageResult {
    let comm = std::fs::read_to_string("/proc/self/comm")?;
    Ok(u64::from(comm.trim_end() == "a-rather-long-e"))
}

fn ps_shows_the_server_and_each_stage_by_name() {
    let mut rt = Runtime::builder();
    let check = rt.register("a-rather-long-entry-name", name_check);
    let run = rt.start().unwrap();
    assert_eq!(run.spawn(check, &0u64).unwrap().join().unwrap().result, 1, "the stage is named after its entry");
    // The server names itself as it starts; it has forked a stage, so it has started.
    let server = std::fs::read_to_string(format!("/proc/{}/comm", run.server_pid())).unwrap();
    assert_eq!(server.trim_end(), runtime::SERVER_NAME);
    run.finish().unwrap();
}

/// A process's `oom_score_adj` (`self`: this one's), in one `read`: `read_to_string` reads
/// again for the end of the file, and the kernel formats the value anew for each read, so a
/// value written in between (0 becoming 500 as the server marks a stage) read as "0\n0\n".
fn oom_score_adj(pid: &str) -> i64 {
    use std::io::Read;
    let mut text = [0u8; 32];
    let len = std::fs::File::open(format!("/proc/{pid}/oom_score_adj")).unwrap().read(&mut text).unwrap();
    std::str::from_utf8(&text[..len]).unwrap().trim().parse().unwrap()
}

/// This stage's `oom_score_adj` once it differs from `start` (the server's, which the stage
/// has until the server has written its own, just after the fork), or after 2 s.
fn oom_check(_run: &RunHandle, start: i64) -> StageResult {
    if start == 1000 {
        return Ok(1000);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut value = oom_score_adj("self");
    while value == start && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        value = oom_score_adj("self");
    }
    Ok(value as u64)
}

/// Stages get a higher `oom_score_adj` than the root's and the server's, which keep theirs.
fn stages_go_before_the_root_and_the_server_when_memory_runs_out() {
    let root = oom_score_adj("self");
    let mut rt = Runtime::builder();
    let check = rt.register("oom", oom_check);
    let run = rt.start().unwrap();
    // Half the kernel's scale above the root's, within its range (-1000..=1000).
    let expected = (root + 500).min(1000);
    assert!(expected > root || root == 1000, "{root}");
    for _ in 0..20 {
        assert_eq!(run.spawn(check, &root).unwrap().join().unwrap().result as i64, expected);
        assert_eq!(oom_score_adj(&run.server_pid().to_string()), root, "the server keeps its own");
    }
    assert_eq!(oom_score_adj("self"), root, "and so does the root");
    run.finish().unwrap();
}

/// Holds 4 MiB of its own, then makes rings of 8 MiB, up to `mib` MiB of them, and holds them:
/// memory charged to the cgroup (a ring's pages are reserved when it is made) that no process's
/// resident size shows, as a sieve's rings are. Returns how many it made. (What it holds of its
/// own is what its death gives back: room for the root and the server to clean up in.)
fn hog(run: &RunHandle, mib: u64) -> StageResult {
    let own = std::hint::black_box(vec![1u8; 4 << 20]);
    let rings: Vec<_> =
        (0..mib / 8).map(|_| run.create_queue::<u64, Spsc>(QueueOptions::new(1 << 20))).collect::<Result<_, _>>()?;
    drop(own);
    Ok(rings.len() as u64)
}

/// In a memory cgroup of 64 MiB without swap, a stage that makes 512 MiB of rings is the one
/// the kernel kills — not the root, whose resident size is the largest, nor the server; they
/// then report it as out of memory and remove the run's segments. Needs root and a
/// writable cgroup file system; this case's process moves into the cgroup and back out.
fn a_stage_the_oom_killer_ends_is_reported_as_out_of_memory() {
    let mut cgroup = match LimitedCgroup::new(&format!("oom-case-{}", std::process::id()), 64 << 20) {
        Ok(cgroup) => cgroup,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    cgroup.enter();
    let mut rt = Runtime::builder();
    let hog = rt.register("hog", hog);
    let run = rt.start().unwrap();
    // The root larger than the stage, as in a sieve: 16 MiB touched, after the start so that
    // neither the server nor the stage shares it. Only the stage's higher `oom_score_adj` then
    // makes the killer pick the stage.
    let ballast = vec![1u8; 16 << 20];
    let prefix = run.prefix().to_owned();
    let joined = run.spawn(hog, &512u64).unwrap().join();
    let finished = run.finish();
    drop(std::hint::black_box(ballast));
    let dir = cgroup.dir().to_owned();
    drop(cgroup);
    let error = joined.err().or(finished.err()).expect("the stage made 512 MiB of rings under a 64 MiB limit");
    match &error {
        RuntimeError::StageFailed { status, reason, .. } => {
            assert_eq!(*status, ExitStatus::Signal(libc::SIGKILL), "{error}");
            assert!(reason.as_deref().is_some_and(|r| r.contains("out of memory")), "{error}");
        }
        other => panic!("expected the stage to fail, got {other}"),
    }
    assert!(shm_entries_containing(&prefix).is_empty(), "the root and the server cleaned up");
    assert!(!dir.exists(), "the case's cgroup is removed");
}

/// Starts this binary as the peer below, in a PID namespace of its own.
const PEER_FLAG: &str = "--pid-namespace-peer";

/// The peer in its own PID namespace (as pid 1, with its own /proc, sharing our /dev/shm):
/// makes a queue and a run, prints the run's prefix, and holds both until its stdin closes.
fn pid_namespace_peer(queue: &str) -> ! {
    use std::io::{Read, Write};
    let held = Queue::<u64, Spsc>::create(queue, 8).expect("the peer's queue");
    let mut rt = Runtime::builder();
    let answer = rt.register("answer", answer);
    let run = rt.start().expect("a run in the peer's namespace");
    assert_eq!(run.spawn(answer, &1u64).unwrap().join().unwrap().result, 2, "the run works there");
    println!("{}", run.prefix());
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    run.finish().expect("the peer's run finishes");
    drop(held);
    std::process::exit(0);
}

/// Two containers sharing `/dev/shm` but not their PID namespace: the pids in the other's
/// segments mean nothing here. The cleanup every run starts with must not remove the other's
/// live run (its root's pid here is someone else, or nobody), nor `shmq clean` its queue, and
/// its queue is refused rather than opened with peers that would all look dead. Needs root
/// and `unshare`.
fn a_run_and_a_queue_of_another_pid_namespace_are_neither_cleaned_nor_opened() {
    let Some(mut peer) = Peer::start("alive") else { return };
    let theirs = shm_entries_containing(&peer.prefix);
    assert!(theirs.len() >= 2, "the peer's run has a table and a spawn queue: {theirs:?}");
    let root = runtime::root_of(&theirs[0]).unwrap();
    assert!(root.is_foreign() && root.is_alive(), "{root:?}");

    let stale = runtime::find_stale().unwrap();
    assert!(stale.removed.iter().all(|n| !n.starts_with(&peer.prefix)), "judged dead: {:?}", stale.removed);
    assert!(theirs.iter().all(|n| stale.foreign.contains(n)), "{:?}", stale.foreign);
    runtime::remove_stale().unwrap();
    assert_eq!(shm_entries_containing(&peer.prefix), theirs, "the cleanup a run starts with left the other run alone");

    match Queue::<u64, Spsc>::open(&peer.queue) {
        Err(shm_queue::OpenError::OtherPidNamespace { .. }) => {}
        other => panic!("the other namespace's queue: {other:?}"),
    }
    let inspector = shm_queue::Inspector::open(&peer.queue).unwrap();
    assert!(inspector.is_foreign() && !inspector.is_stale());
    drop(inspector);

    drop(peer.child.stdin.take());
    assert!(peer.child.wait().unwrap().success(), "the peer finished its run");
    assert!(shm_entries_containing(&peer.prefix).is_empty(), "the peer's run removed its segments");
    assert!(shm_entries_containing(&peer.queue[1..]).is_empty(), "the peer's queue is gone with it");
}

/// The peer's whole PID namespace killed at once, as a container is (its init SIGKILLed): no
/// process of its run is left to clean up. From the host's namespace, which sees that none
/// of its processes is left, the cleanup every run starts with removes the run, and the queue
/// is stale; from elsewhere both are kept.
fn a_pid_namespace_killed_outright_leaves_nothing_the_host_keeps() {
    let Some(mut peer) = Peer::start("killed") else { return };
    let theirs = shm_entries_containing(&peer.prefix);
    // SIGKILL to `unshare`: `--kill-child` passes it on to the namespace's init, whose death
    // kills every process of the namespace.
    // Its stdin stays open: `wait` would close it, and the peer, reading the end of it in the
    // moment before its SIGKILL lands, would end its run cleanly instead.
    let _stdin = peer.child.stdin.take();
    peer.child.kill().unwrap();
    peer.child.wait().unwrap();
    if !seen_gone_from_here() {
        assert!(runtime::find_stale().unwrap().foreign.iter().any(|n| theirs.contains(n)));
        for name in &theirs {
            let _ = std::fs::remove_file(format!("/dev/shm/{}", name.trim_start_matches('/')));
        }
        return shm_queue::unlink(&peer.queue).unwrap();
    }
    // The namespace's processes end a moment after its init (the case's watchdog bounds this
    // wait); from then on the cleanup that runs start with removes the run (unless its server
    // had a moment to remove it itself before it was killed), and its queue is stale.
    let stale = || shm_queue::Inspector::open(&peer.queue).unwrap().is_stale();
    while !shm_entries_containing(&peer.prefix).is_empty() || !stale() {
        runtime::remove_stale().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    shm_queue::unlink(&peer.queue).unwrap();
}

/// After `unshare(CLONE_NEWPID)` this process's children land in a new namespace (the first
/// as its pid 1), where the pids they record are not the ones this root sees: refused at the
/// start, with the reason, rather than a run whose server cannot find its parent. Needs root.
fn a_root_whose_children_go_to_another_pid_namespace_cannot_start_a_run() {
    // SAFETY: unshare only changes where this process's future children go.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
        return eprintln!("skipped: unshare(CLONE_NEWPID): {}", std::io::Error::last_os_error());
    }
    let mut rt = Runtime::builder();
    rt.register("answer", answer);
    match rt.start() {
        Err(RuntimeError::BadStart(why)) => assert!(why.contains("another PID namespace"), "{why}"),
        other => panic!("a run started with its children in another namespace: {:?}", other.map(|_| ())),
    }
}

/// This binary as the peer above, in a PID namespace of its own, once it has made its queue
/// and started its run.
struct Peer {
    child: std::process::Child,
    queue: String,
    prefix: String,
}

impl Peer {
    /// `None` (saying why) where this machine will not make a PID namespace for us.
    fn start(tag: &str) -> Option<Self> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        const UNSHARE: [&str; 4] = ["--pid", "--fork", "--mount-proc", "--kill-child"];
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root for a PID namespace");
            return None;
        }
        // Whether this machine lets us make one at all (a container without CAP_SYS_ADMIN
        // does not): only then is anything the peer does the code's doing.
        match Command::new("unshare").args(UNSHARE).arg("true").status() {
            Ok(status) if status.success() => {}
            other => {
                eprintln!("skipped: cannot make a PID namespace here ({other:?})");
                return None;
            }
        }
        let queue = format!("/shmpipe-test-other-pidns-{}-{tag}", std::process::id());
        let mut child = Command::new("unshare")
            .args(UNSHARE)
            .arg(std::env::current_exe().unwrap())
            .args([PEER_FLAG, &queue])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut prefix = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut prefix).unwrap();
        let prefix = prefix.trim().to_owned();
        assert!(!prefix.is_empty(), "the peer failed before its run started: {:?}", child.wait());
        Some(Self { child, queue, prefix })
    }
}

/// Whether a PID namespace that has ended is seen to have from here: from the host's
/// namespace, as root (who may read every process's namespace); elsewhere, never.
fn seen_gone_from_here() -> bool {
    let host = shm_queue::PidNamespace::sees_every_namespace();
    // SAFETY: geteuid has no preconditions.
    match (host, unsafe { libc::geteuid() } == 0) {
        (true, true) => true,
        (false, _) => false,
        // The host, without root: other users' processes hide their namespaces.
        (true, false) => shm_queue::PidNamespace::is_gone(1 << 40),
    }
}

/// Empty files named as segments of a run whose root is gone; removed when dropped, whatever
/// the case did (the harness looks for leftovers named after the case's pid only).
struct DeadRun(Vec<String>);

impl DeadRun {
    /// The run's files, in PID namespace `namespace`.
    fn new(namespace: u64) -> Self {
        // Above the kernel's pid_max limit (2^22): no such process anywhere.
        let prefix = format!("/shmpipe.{}.1.{namespace}.0.", (1u32 << 22) + 1);
        Self(
            ["table", "spawn", "q0"]
                .iter()
                .map(|what| {
                    let name = format!("{prefix}{what}-{}", std::process::id());
                    std::fs::write(format!("/dev/shm{name}"), b"").unwrap();
                    name
                })
                .collect(),
        )
    }
}

impl Drop for DeadRun {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::fs::remove_file(format!("/dev/shm{name}"));
        }
    }
}

/// What a container killed outright leaves: a run whose every process died at once, in a PID
/// namespace that has ended. Its pids mean nothing here; the host's namespace, which sees
/// every process, sees that none is left in that namespace and removes the run; from any
/// other namespace it is kept. A run of this namespace with a dead root goes as always.
fn a_dead_run_of_another_pid_namespace_is_removed_only_from_the_hosts() {
    // Namespace numbers are 32-bit: this one never had a process.
    let foreign = DeadRun::new(1 << 40);
    let here = DeadRun::new(shm_queue::PidNamespace::current().unwrap().as_raw());
    let stale = runtime::find_stale().unwrap();
    assert!(here.0.iter().all(|n| stale.removed.contains(n)), "{stale:?}");
    let judged = if seen_gone_from_here() { &stale.removed } else { &stale.foreign };
    assert!(foreign.0.iter().all(|n| judged.contains(n)), "{stale:?}");
}

/// Where a run's table keeps its fork server's pid (after magic and root pid).
const SERVER_PID_AT: u64 = 12;

/// Pops one number and returns it.
fn pop_one(_run: &RunHandle, input: QueueName) -> StageResult {
    Ok(Queue::<u64, Spsc>::open(input.as_str())?.consumer()?.pop()?)
}

/// The table is shared memory any process of the run can write: a server pid scribbled there
/// made the root's health check report a live server gone (and its joins fail).
fn the_root_judges_its_server_by_the_pid_it_forked_not_the_tables() {
    use std::os::unix::fs::FileExt;
    let mut rt = Runtime::builder();
    let pop_one = rt.register("pop-one", pop_one);
    let run = rt.start().unwrap();
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(8)).unwrap();
    let stage = run.spawn(pop_one, &name).unwrap();
    let table = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{}table", run.prefix())).unwrap();
    // Above the kernel's pid_max limit (2^22): no such process.
    table.write_all_at(&((1u32 << 22) + 1).to_le_bytes(), SERVER_PID_AT).unwrap();
    assert!(run.health().is_none(), "{:?}", run.health());
    queue.producer().unwrap().push(5).unwrap();
    assert_eq!(stage.join().unwrap().result, 5);
    run.finish().unwrap();
}

/// Where a run's table keeps the kind of its first failure (after magic, root pid, server
/// pid, next stage, next queue, failed stage).
const FAILURE_KIND_AT: u64 = 28;
/// The value a recorder writes there while it fills in the rest.
const FAILURE_CLAIMED: u32 = 4;

/// A recorder of the run's first failure killed (or stopped) between its claim and its
/// publishing left the run failed with no failure anyone could read: `finish` said all went
/// well. The server now lets such a recorder finish for a while, then records its own.
fn a_failure_whose_recorder_never_finished_is_still_reported() {
    use std::os::unix::fs::FileExt;
    let mut rt = Runtime::builder();
    let fail = rt.register("failing-stage", fail);
    let run = rt.start().unwrap();
    let table = format!("/dev/shm{}table", run.prefix());
    let file = std::fs::OpenOptions::new().write(true).open(&table).unwrap();
    file.write_all_at(&FAILURE_CLAIMED.to_le_bytes(), FAILURE_KIND_AT).unwrap();
    let stage = run.spawn(fail, &0u64).unwrap();
    let id = stage.id();
    assert!(stage.join().is_err());
    match run.finish() {
        Err(RuntimeError::StageFailed { stage, reason, .. }) => {
            assert_eq!(stage, id);
            assert_eq!(reason.as_deref(), Some("the input was bad"));
        }
        other => panic!("the run's failure was lost: {other:?}"),
    }
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct LateArgs {
    output: QueueName,
    writer: Entry<QueueName>,
}

/// Asks for a writer stage and returns at once, without joining it.
fn late_requester(run: &RunHandle, args: LateArgs) -> StageResult {
    run.spawn(args.writer, &args.output)?;
    Ok(0)
}

fn writer(_run: &RunHandle, output: QueueName) -> StageResult {
    Queue::<u64, Spsc>::open(output.as_str())?.producer()?.push(7)?;
    Ok(0)
}

/// The root calls `finish` while a stage asks for another and returns without joining it:
/// `finish` waits for every stage, the one asked for last included. (The server used to stop
/// as soon as `stop` was set and its last child was gone, without looking for a request
/// still queued; that window, between a stage's request and its exit, is not pinned here.)
fn a_stage_requested_just_before_finish_still_runs() {
    let mut rt = Runtime::builder();
    let requester = rt.register("late-requester", late_requester);
    let writer = rt.register("writer", writer);
    let run = rt.start().unwrap();
    let (queue, output) = run.create_queue::<u64, Spsc>(QueueOptions::new(8)).unwrap();
    let mut rx = queue.consumer().unwrap();
    run.spawn(requester, &LateArgs { output, writer }).unwrap();
    run.finish().unwrap();
    assert_eq!(rx.try_pop(), Ok(7), "the stage asked for last ran before the run ended");
}

/// Joins its own handle, which could never end: refused.
fn self_joiner(run: &RunHandle, _: u64) -> StageResult {
    match run.stage(run.stage_id())?.join() {
        Err(RuntimeError::JoinSelf(id)) if id == run.stage_id() => Ok(1),
        other => Err(format!("joining itself: {other:?}").into()),
    }
}

fn a_stage_cannot_join_itself() {
    let mut rt = Runtime::builder();
    let self_joiner = rt.register("self_joiner", self_joiner);
    let run = rt.start().unwrap();
    assert_eq!(run.spawn(self_joiner, &0u64).unwrap().join().unwrap().result, 1);
    run.finish().unwrap();
}

/// Starts a run of its own: a stage may not.
fn nested_start(_run: &RunHandle, _: u64) -> StageResult {
    let mut rt = Runtime::builder();
    rt.register("answer", answer);
    match rt.start() {
        Err(RuntimeError::BadStart(why)) if why.contains("already has a run") => Ok(1),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(0),
    }
}

/// The signal handlers and the orphans a root reaps are its process's: a second run at once
/// would take them from the first (a Ctrl-C reaching only one server, the first's handlers
/// reset by the second's end). Refused, from the root and from a stage; after `finish`, the
/// next run starts.
fn one_run_at_a_time_and_none_from_a_stage() {
    let mut rt = Runtime::builder();
    let nested = rt.register("nested", nested_start);
    let run = rt.start().unwrap();
    let mut second = Runtime::builder();
    second.register("answer", answer);
    match second.start() {
        Err(RuntimeError::BadStart(why)) => assert!(why.contains("already has a run"), "{why}"),
        other => panic!("a second run started beside the first: {:?}", other.map(|_| ())),
    }
    assert_eq!(run.spawn(nested, &0u64).unwrap().join().unwrap().result, 1, "a stage started a run");
    run.finish().unwrap();
    a_run_starts_and_a_stage_answers();
}

/// A root that printed part of a line before the start: the server and every stage are forked
/// copies of it, and would each write that text again as they exit.
fn text_buffered_for_stdout_before_the_start_is_written_once() {
    use std::io::Write;
    let path = std::env::temp_dir().join(format!("shmpipe-stdout-case-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    // SAFETY: plain descriptor calls on descriptors we own.
    let saved = unsafe { libc::dup(1) };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&file), 1) }, 1);
    print!("a line without its end");
    let mut rt = Runtime::builder();
    let answer = rt.register("answer", answer);
    let run = rt.start().unwrap();
    for n in 0..3u64 {
        assert_eq!(run.spawn(answer, &n).unwrap().join().unwrap().result, n + 1);
    }
    run.finish().unwrap();
    std::io::stdout().flush().unwrap();
    // SAFETY: putting our stdout back.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
    let written = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(written, "a line without its end", "written by the root alone, once");
}

extern "C" fn on_usr_term(_: libc::c_int) {}

/// The current handler of `signal`, as a number (SIG_DFL, SIG_IGN or a function's address).
fn disposition(signal: libc::c_int) -> libc::sighandler_t {
    // SAFETY: reading the disposition into a zeroed, valid out-pointer.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current);
        current.sa_sigaction
    }
}

/// Whether this process is a child subreaper (1) or not (0).
fn subreaper() -> libc::c_int {
    let mut role: libc::c_int = -1;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes an int through the pointer.
    assert_eq!(unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut role as *mut libc::c_int, 0, 0, 0) }, 0);
    role
}

/// A root with its own SIGTERM handler and SIGHUP ignored (as under `nohup`): during the run a
/// hang-up still interrupts nothing, and afterwards both are as they were, and the root is no
/// longer a subreaper.
fn the_roots_signal_dispositions_are_its_own_again_after_the_run() {
    let mine = on_usr_term as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing a handler that does nothing, ignoring one signal, defaulting one
    // (which a shell's background job, this case's process perhaps, would ignore).
    unsafe {
        libc::signal(libc::SIGTERM, mine);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    let mut rt = Runtime::builder();
    let answer = rt.register("answer", answer);
    assert_eq!(subreaper(), 0);
    let run = rt.start().unwrap();
    assert_eq!(subreaper(), 1, "the root reaps the run's orphans");
    assert_ne!(disposition(libc::SIGTERM), mine, "the run handles SIGTERM");
    assert_eq!(disposition(libc::SIGHUP), libc::SIG_IGN, "an ignored hang-up stays ignored");
    // SAFETY: signalling ourselves with a signal we ignore.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    assert_eq!(run.spawn(answer, &1u64).unwrap().join().unwrap().result, 2);
    assert!(run.failure().is_none(), "the ignored hang-up interrupted the run");
    run.finish().unwrap();
    assert_eq!(disposition(libc::SIGTERM), mine, "the root's handler is back");
    assert_eq!(subreaper(), 0, "orphans of the root's other work go to init again");
    assert_eq!(disposition(libc::SIGHUP), libc::SIG_IGN);
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
}
