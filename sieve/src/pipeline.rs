//! The pipeline mode: every stage its own process, numbers flowing through shm-queue rings.
//!
//! Shape, as in the original: a source process feeds `3..=N` and an end-of-stream mark into a
//! bounded queue; stage 0 starts holding 2 and writes to the sink, which the root "primed" with
//! 2; a full stage has the runtime start a new stage process with the next relatively prime
//! number, hands it the writing end of the sink, and from then on forwards into the new queue.
//!
//! After the end-of-stream mark every stage reports its primes and counters to the root. To
//! keep that O(primes held) however deep the pipeline, reports travel on the sink itself: the
//! deepest stage holds the sink's writing end, writes its report, and hands the end *back* to
//! its parent in its exit result; the parent adopts it once it has joined the child, writes its
//! own report, and so on up to stage 0, which closes the sink. The root reads primes until the
//! mark, then reports (deepest first, the order in which the original prints them) until the
//! sink is closed.

use bytemuck::{Pod, Zeroable};
use runtime::{Entry, QueueName, RunHandle, Runtime, RuntimeError, StageResult};
use shm_queue::{Handover, PopError, Producer, PushError, Queue, QueueOptions, Spsc, WakePolicy};
use thiserror::Error;

use crate::prime_scan::with_wide_scan;
use crate::stage_logic::{StageState, Verdict};
use crate::summary::{EndStats, RunEnds};

/// The end-of-stream mark (numbers are at least 2).
const END: u64 = 0;
/// Words of a report before the stage's primes.
const REPORT_HEADER: usize = 9;
/// Items moved per chunk (at most the queue depth).
const BATCH: usize = 4096;

/// How a pipeline run is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// N: the source feeds `3..=N`.
    pub max_number: u64,
    /// S: primes a stage holds before it starts the next.
    pub stage_size: usize,
    /// Items each queue holds (the original's `MAX_QUEUE_DEPTH`: 10).
    pub queue_depth: usize,
    /// Stages whose first prime p has p·p > N forward without testing.
    pub sqrt_cutoff: bool,
}

/// One stage's report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageReport {
    /// Position in the chain (0 holds 2).
    pub index: u64,
    /// The prime it started with.
    pub first_prime: u64,
    /// Its primes.
    pub primes: Vec<u64>,
    /// Numbers received (end mark excluded).
    pub items_in: u64,
    /// Numbers forwarded.
    pub items_out: u64,
    /// Nanoseconds blocked on a full output.
    pub blocked_full_ns: u64,
    /// Nanoseconds blocked on an empty input.
    pub blocked_empty_ns: u64,
    /// FUTEX_WAIT calls it made.
    pub futex_waits: u64,
    /// Divisibility tests it did.
    pub tests_done: u64,
}

/// Why a pipeline run failed.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The runtime reported a failure (a stage failed, or the run was interrupted).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A queue operation failed outside of a run failure.
    #[error("queue: {0}")]
    Pop(#[from] PopError),
    /// A push failed outside of a run failure.
    #[error("queue: {0}")]
    Push(#[source] PushError<()>),
    /// Making or attaching a queue failed.
    #[error("queue: {0}")]
    Queue(String),
    /// The configuration cannot be run (a stage size or queue depth beyond 32 bits).
    #[error("invalid pipeline configuration: {0}")]
    Config(&'static str),
    /// The run's stages could not all start (see [`stage_room`](crate::stage_room)).
    #[error("{0}")]
    Stages(crate::stage_room::StageShortfall),
    /// The run's queues would not fit in the machine's shared memory (see
    /// [`shared_memory`](crate::shared_memory)).
    #[error("{0}")]
    SharedMemory(crate::shared_memory::Shortfall),
    /// The sink carried something that is not a report.
    #[error("malformed stage report on the sink")]
    MalformedReport,
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl<T> From<PushError<T>> for PipelineError {
    fn from(e: PushError<T>) -> Self {
        Self::Push(e.without_item())
    }
}

macro_rules! queue_error {
    ($($t:ty),*) => {$(
        impl From<$t> for PipelineError {
            fn from(e: $t) -> Self {
                Self::Queue(e.to_string())
            }
        }
    )*};
}
queue_error!(shm_queue::CreateError, shm_queue::OpenError, shm_queue::AttachError);

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct SourceArgs {
    max_number: u64,
    output: QueueName,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct StageArgs {
    first_prime: u64,
    max_number: u64,
    index: u64,
    input: QueueName,
    sink: QueueName,
    sink_end: Handover,
    next: Entry<StageArgs>,
    stage_size: u32,
    queue_depth: u32,
    sqrt_cutoff: u32,
    /// Spelled out, as `Pod` wants no hidden padding.
    _padding: u32,
}

/// How many items a stage that is about to wait on its input must have queued for its
/// consumer to wake it early, before the ring fills. Only rings deeper than this are woken
/// early; smaller ones wake their consumer when full (publishing into a full ring does) or at
/// the end of the stream. Waking for a few items costs the consumer a context switch and a
/// wake-up (~18 µs across CPUs here) for little work, and keeps it from ever taking a whole
/// ring at once: at depth 10, waking whatever was queued had been every other wake-up (without
/// it: context switches −40 %, N=10^6 16.5 → 14.2 s, CPU −16 %; depths 64 and 256 no worse,
/// BENCHMARKS.md). A deep ring is still woken long before it fills, so that the two CPUs keep
/// working together (at depth 8192, waking only for a full ring made N=10^6 7 % slower).
const EARLY_WAKE_BATCH: usize = 512;

pub(crate) fn queue_options(depth: usize) -> QueueOptions {
    // Wake a sleeping peer only at the ring's edges: waking per item across CPUs costs far more
    // than the item. A stage about to wait on its input wakes its consumer early only for a
    // batch worth it (`EARLY_WAKE_BATCH`); nothing is stranded in a partial ring, as the end
    // mark is always followed by a wake-up (a stage's flush, the source's drop of its end).
    // Dead peers are the runtime's business (it poisons every queue when a stage dies), so
    // sleepers need not wake to look for them: with 10,000 stages asleep, a 100 ms re-check
    // alone would be 100,000 wake-ups a second.
    QueueOptions::with_depth(depth).wake(WakePolicy::at_edges(depth)).recheck(IDLE_RECHECK)
}

/// How often an idle stage wakes to re-check its queues when nothing happens.
const IDLE_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a run of `config` can start, without starting anything: its sizes fit 32 bits, its
/// stages fit the processes that can start ([`stage_room`](crate::stage_room)), and its rings
/// fit the free shared memory ([`shared_memory`](crate::shared_memory)). [`run_pipeline`]
/// checks it first; a caller that must refuse before it prints anything calls it itself.
///
/// # Errors
/// `Config`, `Stages` or `SharedMemory`, the first that fails.
pub fn preflight(config: &PipelineConfig) -> Result<(), PipelineError> {
    if u32::try_from(config.stage_size).is_err() || u32::try_from(config.queue_depth).is_err() {
        return Err(PipelineError::Config("a stage size or queue depth beyond 2^32 - 1"));
    }
    if let Some(shortfall) = crate::stage_room::shortfall(config) {
        return Err(PipelineError::Stages(shortfall));
    }
    if let Some(shortfall) = crate::shared_memory::shortfall(config) {
        return Err(PipelineError::SharedMemory(shortfall));
    }
    Ok(())
}

/// What a pipeline run measured: each stage's report, stage 0 first, and the run's two ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRun {
    /// The stages' reports, stage 0 first.
    pub stages: Vec<StageReport>,
    /// The source's and main's ends of their queues.
    pub ends: RunEnds,
}

/// Runs the pipeline. Calls `on_prime` for every prime the root receives, in order (2 first),
/// and returns the stages' reports and what the run's ends saw.
///
/// # Errors
/// The run's failure (`Runtime`), or an output error from `on_prime`.
pub fn run_pipeline(
    config: &PipelineConfig,
    mut on_prime: impl FnMut(u64) -> std::io::Result<()>,
) -> Result<PipelineRun, PipelineError> {
    preflight(config)?;
    // Ask the CPU once, here: the fork server and every stage inherit the answer instead of
    // each trapping to the hypervisor on `cpuid` (5 % of a run's CPU time when they did).
    crate::prime_scan::wide_scan_available();
    let mut builder = Runtime::builder();
    let source = builder.register("source", source_main);
    let stage = builder.register("sieve-stage", stage_main);
    let run = builder.start()?;
    let health = || run.health();
    match drive(&run, &health, config, source, stage, &mut on_prime) {
        Ok(measured) => {
            run.finish()?;
            Ok(measured)
        }
        Err(e) => {
            // The run's own failure explains a poisoned queue better than the queue does.
            let failure = run.health();
            drop(run);
            Err(failure.map_or(e, PipelineError::Runtime))
        }
    }
}

/// How often the root, waiting on the sink, makes sure the run is still healthy. Stages that
/// fail poison the sink and wake it at once; this catches what cannot, such as the fork server
/// dying while a writing end is between two stages. A check that comes in the moment between
/// the server's SIGKILL and its end still finds it running, so the end is found one period
/// later: at 500 ms such a kill once took the run 1.02 s to end (1 kill of the server in ~35).
/// One process reading /proc ten times a second while it waits costs nothing measurable.
const HEALTH_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

fn drive(
    run: &RunHandle,
    health: &dyn Fn() -> Option<RuntimeError>,
    config: &PipelineConfig,
    source: Entry<SourceArgs>,
    stage: Entry<StageArgs>,
    on_prime: &mut dyn FnMut(u64) -> std::io::Result<()>,
) -> Result<PipelineRun, PipelineError> {
    let options = queue_options(config.queue_depth);
    let (numbers, numbers_name) = run.create_queue::<u64, Spsc>(options)?;
    let (sink, sink_name) = run.create_queue::<u64, Spsc>(options)?;
    let mut results = sink.consumer()?;
    let mut prime_the_sink = sink.producer()?;
    prime_the_sink.push(2)?;
    let sink_end = prime_the_sink.into_handover();
    let source = run.spawn(source, &SourceArgs { max_number: config.max_number, output: numbers_name })?;
    let first = run.spawn(
        stage,
        &StageArgs {
            first_prime: 2,
            max_number: config.max_number,
            index: 0,
            input: numbers_name,
            sink: sink_name,
            sink_end,
            next: stage,
            // Both checked to fit at the top of `run_pipeline`.
            stage_size: config.stage_size as u32,
            queue_depth: config.queue_depth as u32,
            sqrt_cutoff: u32::from(config.sqrt_cutoff),
            _padding: 0,
        },
    )?;
    // Primes until the end mark, then report words until the sink closes.
    let mut report_words = Vec::new();
    let mut in_reports = false;
    let mut primes_received = 0u64;
    loop {
        let chunk = match results.read_chunk_timeout(BATCH, HEALTH_CHECK) {
            Ok(chunk) => chunk,
            Err(PopError::Disconnected) => break,
            Err(PopError::Timeout) => match health() {
                Some(failure) => return Err(failure.into()),
                None => continue,
            },
            Err(e) => return Err(e.into()),
        };
        if in_reports {
            report_words.extend_from_slice(&chunk);
            continue;
        }
        for (i, &n) in chunk.iter().enumerate() {
            if n == END {
                in_reports = true;
                report_words.extend_from_slice(&chunk[i + 1..]);
                break;
            }
            on_prime(n)?;
            primes_received += 1;
        }
    }
    source.join()?;
    first.join()?;
    let mut reports = parse_reports(&report_words)?;
    reports.sort_by_key(|r| r.index);
    // The queues' own counters: the source is the only writer of its queue, main the only
    // reader of the sink.
    let (source_side, main_side) = (numbers.stats().producer, sink.stats().consumer);
    let ends = RunEnds {
        source: EndStats {
            items: config.max_number.saturating_sub(2),
            blocked_ns: source_side.blocked_ns,
            futex_waits: source_side.futex_waits,
        },
        main: EndStats { items: primes_received, blocked_ns: main_side.blocked_ns, futex_waits: main_side.futex_waits },
    };
    Ok(PipelineRun { stages: reports, ends })
}

fn parse_reports(mut words: &[u64]) -> Result<Vec<StageReport>, PipelineError> {
    let mut reports = Vec::new();
    while !words.is_empty() {
        let header = words.get(..REPORT_HEADER).ok_or(PipelineError::MalformedReport)?;
        let count = usize::try_from(header[2]).map_err(|_| PipelineError::MalformedReport)?;
        let primes =
            words.get(REPORT_HEADER..REPORT_HEADER.saturating_add(count)).ok_or(PipelineError::MalformedReport)?;
        reports.push(StageReport {
            index: header[0],
            first_prime: header[1],
            items_in: header[3],
            items_out: header[4],
            blocked_full_ns: header[5],
            blocked_empty_ns: header[6],
            futex_waits: header[7],
            tests_done: header[8],
            primes: primes.to_vec(),
        });
        words = &words[REPORT_HEADER + count..];
    }
    Ok(reports)
}

/// The source: `3..=N` in chunks written in place, then the end mark.
fn source_main(_run: &RunHandle, args: SourceArgs) -> StageResult {
    let mut out = Queue::<u64, Spsc>::open(args.output.as_str())?.producer()?;
    let mut next = 3u64;
    while next <= args.max_number {
        let mut chunk = out.write_chunk(BATCH)?;
        let room = chunk.len() as u64;
        let last = args.max_number.min(next.saturating_add(room - 1));
        for (slot, n) in chunk.as_mut_slice().iter_mut().zip(next..=last) {
            *slot = n;
        }
        if last - next + 1 < room {
            // The last chunk is shorter than the room we got: reserve exactly what we write.
            drop(chunk);
            let mut exact = out.write_chunk((last - next + 1) as usize)?;
            let len = exact.len() as u64;
            for (slot, n) in exact.as_mut_slice().iter_mut().zip(next..) {
                *slot = n;
            }
            exact.commit();
            // The ring may have given fewer slots (at its wrap); stop at N without `next + len`,
            // which would overflow when N is u64::MAX.
            let end = next + (len - 1);
            if end == args.max_number {
                break;
            }
            next = end + 1;
            continue;
        }
        chunk.commit();
        if last == args.max_number {
            break;
        }
        next = last + 1;
    }
    out.push(END)?;
    Ok(0)
}

/// Counts of one output end while this stage held it.
#[derive(Default)]
struct Blocked {
    ns: u64,
    futex_waits: u64,
}

fn producer_side(p: &Producer<u64, Spsc>) -> (u64, u64) {
    let s = p.stats().producer;
    (s.blocked_ns, s.futex_waits)
}

/// What one call of [`forward_survivors`] did.
struct Forwarded {
    /// Numbers offered to the stage.
    consumed: usize,
    /// Numbers written to the output.
    written: usize,
    /// The number the stage is to start its child with, if it came up (the last consumed).
    spawn_with: Option<u64>,
}

/// Offers `numbers` to the stage in order and writes those that go on straight into the
/// output's ring, with no copy in between. Room is reserved only once the first of them is
/// known (a stage waits on a full output only when it has a number to put, as the original's
/// put does), and what was written is published at the end. Stops after the number the stage
/// starts its child with (which goes to the current output first), or when the reserved room
/// is full.
#[inline(always)]
fn forward_survivors(
    out: &mut Producer<u64, Spsc>,
    state: &mut StageState,
    numbers: &[u64],
) -> Result<Forwarded, PipelineError> {
    let mut consumed = 0;
    let (first, verdict) = loop {
        let Some(&n) = numbers.get(consumed) else {
            return Ok(Forwarded { consumed, written: 0, spawn_with: None });
        };
        consumed += 1;
        match state.offer(n) {
            Verdict::Drop => {}
            verdict => break (n, verdict),
        }
    };
    let mut chunk = out.write_chunk(numbers.len() - consumed + 1)?;
    let slots = chunk.as_mut_slice();
    slots[0] = first;
    let mut written = 1;
    let mut spawn_with = (verdict == Verdict::SpawnWith).then_some(first);
    while spawn_with.is_none() && written < slots.len() {
        let Some(&n) = numbers.get(consumed) else { break };
        consumed += 1;
        match state.offer(n) {
            Verdict::Drop => {}
            verdict => {
                slots[written] = n;
                written += 1;
                if verdict == Verdict::SpawnWith {
                    spawn_with = Some(n);
                }
            }
        }
    }
    chunk.commit_first(written);
    Ok(Forwarded { consumed, written, spawn_with })
}

/// One stage: the original's loop, over chunks read in place.
fn stage_main(run: &RunHandle, args: StageArgs) -> StageResult {
    let mut input = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?;
    let sink = Queue::<u64, Spsc>::open(args.sink.as_str())?;
    let mut out = sink.adopt_producer(args.sink_end)?;
    let mut state = StageState::new(args.first_prime, args.stage_size as usize);
    if args.sqrt_cutoff != 0 {
        state = state.with_sqrt_cutoff(args.max_number);
    }
    let wakes_early = args.queue_depth as usize > EARLY_WAKE_BATCH;
    let mut out_blocked = Blocked::default();
    let mut held_since = producer_side(&out);
    let mut child = None;
    let (mut items_in, mut items_out) = (0u64, 0u64);
    'stream: loop {
        if wakes_early && input.is_empty() && out.len() >= EARLY_WAKE_BATCH {
            // About to wait on the input: wake whoever waits on what we have written.
            out.flush();
        }
        let chunk = input.read_chunk(BATCH)?;
        // The end mark is the last item a stage's producer ever pushes, so a chunk can hold it
        // only as its last item: no need to search (a pass over every chunk, ~2 % of the CPU).
        let end = (chunk.last() == Some(&END)).then_some(chunk.len() - 1);
        let numbers = &chunk[..end.unwrap_or(chunk.len())];
        items_in += numbers.len() as u64;
        if state.skips_tests() && state.has_spawned() {
            // Past the square root and full: every number goes on untouched (verdict Forward),
            // so pass the chunk straight from our input's segment into our output's.
            out.push_slice(numbers).map_err(|e| e.without_item())?;
            items_out += numbers.len() as u64;
        } else {
            let mut rest = numbers;
            while !rest.is_empty() {
                let step = {
                    let (out, state, numbers) = (&mut out, &mut state, rest);
                    with_wide_scan!(
                        forward_survivors(out: &mut Producer<u64, Spsc>, state: &mut StageState, numbers: &[u64])
                            -> Result<Forwarded, PipelineError>
                    )?
                };
                rest = &rest[step.consumed..];
                items_out += step.written as u64;
                let Some(n) = step.spawn_with else { continue };
                // Splice a new stage in between us and the sink: it gets the sink's writing
                // end, we write into its input from now on.
                let (queue, name) = run.create_queue::<u64, Spsc>(queue_options(args.queue_depth as usize))?;
                let next_input = queue.producer()?;
                let sink_end = std::mem::replace(&mut out, next_input);
                let (ns, waits) = producer_side(&sink_end);
                out_blocked.ns += ns - held_since.0;
                out_blocked.futex_waits += waits - held_since.1;
                held_since = (0, 0);
                let sink_end = sink_end.into_handover();
                child = Some(run.spawn(
                    args.next,
                    &StageArgs { first_prime: n, index: args.index + 1, input: name, sink_end, ..args },
                )?);
            }
        }
        drop(chunk);
        if end.is_some() {
            break 'stream;
        }
    }
    out.push(END)?;
    out.flush();
    let (ns, waits) = producer_side(&out);
    out_blocked.ns += ns - held_since.0;
    out_blocked.futex_waits += waits - held_since.1;
    // Everything the report says is known now. Write it down and let go of the input and the
    // primes before waiting for the child: stages end one after another up the chain, so what
    // is still to unmap after the join is paid once per stage, in series.
    let input_side = input.stats().consumer;
    let primes = state.primes();
    let mut report = vec![
        args.index,
        args.first_prime,
        primes.len() as u64,
        items_in,
        items_out,
        out_blocked.ns,
        input_side.blocked_ns,
        out_blocked.futex_waits + input_side.futex_waits,
        state.tests_done(),
    ];
    report.extend_from_slice(&primes);
    drop((input, state));
    // The sink's writing end comes back from our child once it has reported.
    let mut sink_end = match child {
        Some(child) => {
            drop(out);
            let back = child.join()?.result;
            sink.adopt_producer(Handover { slot: (back >> 32) as u32, role: back as u32 })?
        }
        None => out,
    };
    sink_end.push_slice(&report).map_err(|e| e.without_item())?;
    if args.index == 0 {
        // The last report: closing the sink tells the root there is nothing more.
        return Ok(0);
    }
    let token = sink_end.into_handover();
    Ok(u64::from(token.slot) << 32 | u64::from(token.role))
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    #[test]
    fn a_stage_size_beyond_32_bits_is_refused_before_anything_starts() {
        // Cast to the stages' u32 it would have been 0: stage 0 would never fill.
        let config = PipelineConfig { max_number: 100, stage_size: 1 << 32, queue_depth: 10, sqrt_cutoff: false };
        assert!(matches!(run_pipeline(&config, |_| Ok(())), Err(PipelineError::Config(_))));
    }
}
