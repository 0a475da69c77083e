//! SIGKILL of each role of a pipeline at each moment that matters, pinned rather than random
//! in time (scripts/fault-inject.sh does random timing).
//!
//! The pipeline is the sieve's shape: the root spawns a source, which spawns the first stage,
//! which spawns the middle one, which spawns the last; each stage creates its output queue and
//! the last writes into the root's sink. Roles × moments:
//!
//! | role                  | asleep on full | asleep on empty | holding a chunk | during a spawn |
//! |-----------------------|----------------|-----------------|-----------------|----------------|
//! | source                | yes            | (has no input)  | write chunk     | yes            |
//! | first, middle, last   | yes            | yes             | write chunk     | yes            |
//! | root                  | (only reads)   | yes             | read chunk      | yes            |
//!
//! Every process of the run reports to the case process on a `reports` queue, and the source
//! starts only when the case process opens a `gate` queue, so each moment is reached on
//! purpose: "asleep on full" has a downstream that never reads; "asleep on empty" never opens
//! the gate; "holding a chunk" reserves (or reads) a chunk and then waits holding it; "during a
//! spawn" stops the fork server before the victim spawns, so the victim is killed after its
//! request is queued and before it is served, and only then is the server continued. The
//! case process checks that the victim is asleep in a futex (/proc/PID/wchan) before killing.
//!
//! A killed stage must end the run with an error naming it, and leave no process and no
//! segment. A killed root takes its run down by pdeathsig, and the next cleaner removes what
//! it left in /dev/shm.

#[path = "../shm-queue/tests/support/mod.rs"]
#[macro_use]
mod support;

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use runtime::{Entry, ExitStatus, QueueName, RunHandle, Runtime, RuntimeError, StageResult};
use shm_queue::{Mpsc, PopError, Producer, PushError, Queue, QueueOptions, Spsc};

/// Roles, in pipeline order, then the root and the fork server (reported, never a stage role).
const SOURCE: u32 = 0;
const FIRST: u32 = 1;
const MIDDLE: u32 = 2;
const LAST: u32 = 3;
const ROOT: u32 = 4;
const SERVER: u32 = 5;
const STAGES: u32 = 4;

/// Moments.
const ASLEEP_ON_FULL: u32 = 0;
const ASLEEP_ON_EMPTY: u32 = 1;
const HOLDING_A_CHUNK: u32 = 2;
const DURING_A_SPAWN: u32 = 3;

/// Report kinds, in the top byte of a report; the role is in the next, a pid in the low half.
const STARTED: u64 = 1;
const AT_MOMENT: u64 = 2;

const CAPACITY: usize = 8;
const PATIENCE: Duration = Duration::from_secs(30);

fn report(kind: u64, role: u32, pid: u32) -> u64 {
    kind << 56 | u64::from(role) << 48 | u64::from(pid)
}

fn parse(report: u64) -> (u64, u32, u32) {
    (report >> 56, (report >> 48) as u32 & 0xff, report as u32)
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct StageArgs {
    input: QueueName,
    sink: QueueName,
    reports: QueueName,
    next: Entry<StageArgs>,
    answer: Entry<u64>,
    role: u32,
    victim: u32,
    moment: u32,
}

fn answer(_run: &RunHandle, n: u64) -> StageResult {
    Ok(n)
}

/// Waits to be killed.
fn park() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn stage(run: &RunHandle, args: StageArgs) -> StageResult {
    let mut reports = Queue::<u64, Mpsc>::open(args.reports.as_str())?.producer()?;
    let me = std::process::id();
    let victim = args.victim == args.role;
    let output = if args.role == LAST {
        Queue::<u64, Spsc>::open(args.sink.as_str())?
    } else {
        let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(CAPACITY))?;
        run.spawn(args.next, &StageArgs { input: name, role: args.role + 1, ..args })?.pid()?;
        queue
    };
    let mut rx = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?;
    let mut tx = output.producer()?;
    reports.push(report(STARTED, args.role, me))?;
    if args.moment == ASLEEP_ON_FULL && args.role == args.victim + 1 {
        park(); // the victim's downstream: attached, never reading
    }
    if victim && args.moment == ASLEEP_ON_EMPTY {
        if rx.try_pop() != Err(PopError::Empty) {
            return Err("the input should be empty: the gate is never opened".into());
        }
        reports.push(report(AT_MOMENT, args.role, me))?;
    }
    // The source's first item is the gate's token; the others', the first number.
    let first = rx.pop()?;
    if victim && args.moment == HOLDING_A_CHUNK {
        let mut chunk = tx.write_chunk(CAPACITY / 2)?;
        for slot in chunk.as_mut_slice() {
            *slot = first;
        }
        reports.push(report(AT_MOMENT, args.role, me))?;
        park();
    }
    if victim && args.moment == DURING_A_SPAWN {
        reports.push(report(AT_MOMENT, args.role, me))?;
        run.spawn(args.answer, &0)?.pid()?;
        return Err("the spawn was served: the case should have killed this stage while it waited".into());
    }
    let mut full_reported = !(victim && args.moment == ASLEEP_ON_FULL);
    let mut forward = |tx: &mut Producer<u64, Spsc>, v: u64| -> StageResult {
        if !full_reported {
            match tx.try_push(v) {
                Ok(()) => return Ok(0),
                Err(PushError::Full(_)) => {
                    full_reported = true;
                    reports.push(report(AT_MOMENT, args.role, me))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.push(v)?;
        Ok(0)
    };
    if args.role == SOURCE {
        for n in 3u64.. {
            forward(&mut tx, n)?;
        }
    } else {
        forward(&mut tx, first)?;
        loop {
            let v = rx.pop()?;
            forward(&mut tx, v)?;
        }
    }
    unreachable!("the source counts up forever")
}

/// What the case process holds while it drives a case.
struct Driver {
    reports: shm_queue::Consumer<u64, Mpsc>,
    _keeper: Producer<u64, Mpsc>,
    gate: Producer<u64, Spsc>,
    pids: [u32; 6],
}

impl Driver {
    /// Takes the next report: records a start, returns the role that reached its moment.
    fn next_report(&mut self) -> Option<u32> {
        let (kind, role, pid) = match self.reports.pop_timeout(PATIENCE) {
            Ok(r) => parse(r),
            Err(e) => panic!("no report from the run: {e}"),
        };
        match kind {
            STARTED => {
                self.pids[role as usize] = pid;
                None
            }
            AT_MOMENT => Some(role),
            _ => panic!("unknown report {kind}"),
        }
    }

    /// Waits for `roles` to start; returns whether the victim reached its moment meanwhile (a
    /// victim asleep on empty gets there before the stages after it start).
    fn wait_started(&mut self, roles: &[u32], victim: u32) -> bool {
        let mut at_moment = false;
        while roles.iter().any(|&role| self.pids[role as usize] == 0) {
            if let Some(role) = self.next_report() {
                assert_eq!(role, victim, "only the victim reports a moment");
                at_moment = true;
            }
        }
        at_moment
    }

    fn wait_at_moment(&mut self, victim: u32) {
        loop {
            match self.next_report() {
                Some(role) => return assert_eq!(role, victim, "only the victim reports a moment"),
                None => continue,
            }
        }
    }
}

/// Whether `pid` is asleep in a futex wait.
fn asleep_in_futex(pid: u32) -> bool {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let state = shm_queue::ProcessStatus::read(pid).map(|s| s.state);
    wchan.contains("futex") && state == Some(b'S')
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pids are processes of this case's run.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

fn gone_or_zombie(pid: u32) -> bool {
    shm_queue::ProcessStatus::read(pid).is_none_or(|s| s.state == b'Z')
}

/// Starts a run and its pipeline; returns the run, the sink (the root's end) and the entry
/// that spawns a trivial stage.
fn start_pipeline(
    victim: u32,
    moment: u32,
    gate: QueueName,
    reports: QueueName,
) -> (runtime::Run, Queue<u64, Spsc>, Entry<u64>) {
    let mut rt = Runtime::builder();
    let stage = rt.register("stage", stage);
    let answer = rt.register("answer", answer);
    let run = rt.start().expect("start");
    let (sink, sink_name) = run.create_queue::<u64, Spsc>(QueueOptions::new(CAPACITY)).expect("sink");
    let args = StageArgs { input: gate, sink: sink_name, reports, next: stage, answer, role: SOURCE, victim, moment };
    run.spawn(stage, &args).expect("spawn the source");
    (run, sink, answer)
}

/// The root's side when the root is the victim (in a process the case forked).
fn root_victim(moment: u32, gate: QueueName, reports: QueueName) -> i32 {
    let (run, sink, answer) = start_pipeline(ROOT, moment, gate, reports);
    let mut rx = sink.consumer().expect("sink consumer");
    let mut tx = Queue::<u64, Mpsc>::open(reports.as_str()).expect("reports").producer().expect("reporter");
    let me = std::process::id();
    tx.push(report(STARTED, SERVER, run.server_pid())).expect("report");
    match moment {
        ASLEEP_ON_EMPTY => {
            tx.push(report(AT_MOMENT, ROOT, me)).expect("report");
            let got = rx.pop();
            eprintln!("the root woke with {got:?}: the gate was never opened");
        }
        HOLDING_A_CHUNK => {
            let chunk = rx.read_chunk(CAPACITY).expect("read chunk");
            tx.push(report(AT_MOMENT, ROOT, me)).expect("report");
            std::hint::black_box(&chunk);
            park();
        }
        DURING_A_SPAWN => {
            rx.pop().expect("first prime");
            tx.push(report(AT_MOMENT, ROOT, me)).expect("report");
            let _ = run.spawn(answer, &0).and_then(|s| s.pid());
            eprintln!("the spawn was served: the case should have killed the root first");
        }
        _ => unreachable!("the root has no such moment"),
    }
    1
}

fn fault_case(victim: u32, moment: u32) {
    let reports_name = support::shm_name();
    let gate_name = support::shm_name();
    let reports_queue = Queue::<u64, Mpsc>::create(&reports_name, 64).expect("reports");
    let gate_queue = Queue::<u64, Spsc>::create(&gate_name, 1).expect("gate");
    let reports = QueueName::new(&reports_name).expect("name fits");
    let gate = QueueName::new(&gate_name).expect("name fits");

    let mut root_child = None;
    let mut local = None;
    if victim == ROOT {
        root_child = Some(support::fork(|| root_victim(moment, gate, reports)));
    } else {
        local = Some(start_pipeline(victim, moment, gate, reports));
    }
    let mut driver = Driver {
        reports: reports_queue.consumer().expect("consumer"),
        _keeper: reports_queue.producer().expect("keeper"),
        gate: gate_queue.producer().expect("gate producer"),
        pids: [0; 6],
    };
    let at_moment = match (&root_child, &local) {
        (Some(child), _) => {
            driver.pids[ROOT as usize] = child.pid() as u32;
            driver.wait_started(&[SOURCE, FIRST, MIDDLE, LAST, SERVER], victim)
        }
        (None, Some((run, _, _))) => {
            driver.pids[ROOT as usize] = std::process::id();
            driver.pids[SERVER as usize] = run.server_pid();
            driver.wait_started(&[SOURCE, FIRST, MIDDLE, LAST], victim)
        }
        _ => unreachable!(),
    };
    let server = driver.pids[SERVER as usize];
    if moment == DURING_A_SPAWN {
        signal(server, libc::SIGSTOP);
    }
    if moment != ASLEEP_ON_EMPTY {
        driver.gate.push(1).expect("open the gate");
    }
    if !at_moment {
        driver.wait_at_moment(victim);
    }
    let victim_pid = driver.pids[victim as usize];
    if moment != HOLDING_A_CHUNK {
        support::wait_until(|| asleep_in_futex(victim_pid));
    }
    signal(victim_pid, libc::SIGKILL);
    let killed = Instant::now();
    if moment == DURING_A_SPAWN {
        signal(server, libc::SIGCONT);
    }
    let others: Vec<u32> =
        (0..STAGES).chain([SERVER]).map(|r| driver.pids[r as usize]).filter(|&p| p != victim_pid).collect();

    if let Some(child) = root_child {
        assert_eq!(child.wait(), support::Status::Signaled(libc::SIGKILL), "the root died of the kill");
        // Every process of the run, including one the server may fork for the dead root's
        // request, is in this case's process group.
        let me = std::process::id();
        support::wait_until(|| support::live_members_of_group(me) == [me]);
        println!("every process of the run gone {:?} after the root's kill", killed.elapsed());
        // The server, told of the root's death, removed the run's segments before it exited.
        let prefix = format!("shmpipe.{victim_pid}.");
        let left: Vec<String> = shm_queue::list("").unwrap().into_iter().filter(|n| n.contains(&prefix)).collect();
        assert!(left.is_empty(), "left in /dev/shm: {left:?}");
        return;
    }
    let (run, sink, _) = local.expect("the case process is the root");
    let expect_victim = |failure: Option<RuntimeError>| match failure {
        Some(RuntimeError::StageFailed { pid, status, entry, .. }) => {
            assert_eq!((pid, status, entry.as_str()), (victim_pid, ExitStatus::Signal(libc::SIGKILL), "stage"));
        }
        other => panic!("expected the killed stage (pid {victim_pid}) to be named, got {other:?}"),
    };
    expect_victim(run.wait_failure(PATIENCE));
    println!("run failed {:?} after the kill", killed.elapsed());
    let prefix = run.prefix().to_owned();
    drop((sink, driver));
    expect_victim(run.finish().err());
    for pid in others {
        assert!(gone_or_zombie(pid), "process {pid} of the run is left");
    }
    let me = std::process::id();
    assert!(support::children_of(me).is_empty(), "every process of the run is reaped");
    assert_eq!(support::live_members_of_group(me), [me], "no process of the run is left");
    assert!(shm_queue::list(&prefix).unwrap().is_empty(), "no segment of the run is left");
}

macro_rules! matrix {
    ($($name:ident: $victim:expr, $moment:expr;)*) => {
        $(fn $name() { fault_case($victim, $moment) })*
        fn main() { support::main(cases![$($name),*]) }
    };
}

matrix! {
    source_asleep_on_full: SOURCE, ASLEEP_ON_FULL;
    source_holding_a_write_chunk: SOURCE, HOLDING_A_CHUNK;
    source_during_a_spawn: SOURCE, DURING_A_SPAWN;
    first_stage_asleep_on_full: FIRST, ASLEEP_ON_FULL;
    first_stage_asleep_on_empty: FIRST, ASLEEP_ON_EMPTY;
    first_stage_holding_a_write_chunk: FIRST, HOLDING_A_CHUNK;
    first_stage_during_a_spawn: FIRST, DURING_A_SPAWN;
    middle_stage_asleep_on_full: MIDDLE, ASLEEP_ON_FULL;
    middle_stage_asleep_on_empty: MIDDLE, ASLEEP_ON_EMPTY;
    middle_stage_holding_a_write_chunk: MIDDLE, HOLDING_A_CHUNK;
    middle_stage_during_a_spawn: MIDDLE, DURING_A_SPAWN;
    last_stage_asleep_on_full: LAST, ASLEEP_ON_FULL;
    last_stage_asleep_on_empty: LAST, ASLEEP_ON_EMPTY;
    last_stage_holding_a_write_chunk: LAST, HOLDING_A_CHUNK;
    last_stage_during_a_spawn: LAST, DURING_A_SPAWN;
    root_asleep_on_empty: ROOT, ASLEEP_ON_EMPTY;
    root_holding_a_read_chunk: ROOT, HOLDING_A_CHUNK;
    root_during_a_spawn: ROOT, DURING_A_SPAWN;
}
