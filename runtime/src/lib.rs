//! Run a pipeline of processes on one node over [`shm_queue`] rings.
//!
//! # Process model
//! - The **root** (your `main`) registers entry points, then [`Runtime::start`]s a run. It
//!   becomes a child subreaper and forks one **fork server**.
//! - Every **stage** is forked by the fork server, at the request of the root or of any other
//!   stage ([`RunHandle::spawn`]): a request (entry index + plain-data arguments) goes through an
//!   MPSC ring in the run's segment. Stages are thus two forks from the root at any depth, and
//!   a fork costs the same for the 10,000th stage as for the first.
//! - Queues are created under the run's name prefix ([`RunHandle::create_queue`]); stages
//!   attach by name, and pass ends on with [`Producer::into_handover`](shm_queue::Producer::into_handover).
//! - **Joining** goes through the run's table: a stage records its exit code and result before
//!   it exits; the server reaps every stage and records signals. Joiners sleep on a futex.
//! - **Failure**: a stage that exits non-zero or is killed fails the run. The server records it,
//!   poisons every queue of the run (waking every sleeper), and kills every other stage; the
//!   root's calls return [`RuntimeError::StageFailed`] naming the stage, its pid and status,
//!   with the stage's reason (its error, or its panic's message) when it gave one.
//! - **Signals**: SIGINT, SIGTERM, SIGHUP or SIGQUIT to the root stop the run the same way
//!   ([`RuntimeError::Interrupted`]), unless the root was started ignoring them; stages and
//!   the server ignore the SIGINT, SIGQUIT and SIGHUP the terminal sends the whole group.
//! - **Death**: every process sets PR_SET_PDEATHSIG (and re-checks its parent): if the root is
//!   SIGKILLed the server hears of it, kills and reaps every stage and removes the run's
//!   segments. If the server dies, every stage dies with it; what is left in `/dev/shm` then
//!   names the dead root in its prefix, and [`remove_stale`] (run by every new run) removes it
//!   (a run of another PID namespace, only once that whole namespace is gone).
//!   The server gives each stage an `oom_score_adj` [`STAGE_BIAS`] above its own just after
//!   the fork, so that when memory runs out the kernel kills a stage (a failed run, cleaned
//!   up) before the root or the server.
//! - **Cleanup**: [`Run::finish`] and `Drop for Run` remove every segment of the run.
//!
//! The root must be single-threaded when it starts the run ([`Runtime::start`] refuses with
//! [`RuntimeError::BadStart`] otherwise): the fork server is forked from it, and `fork` copies
//! only the calling thread. After that only the server forks, and it runs no code of yours,
//! so the root and the stages may start threads of their own.
//!
//! A panic on any thread of a stage fails the run: it is recorded before the unwinding drops
//! the queue ends the thread holds, which poisons their queues, so whoever finds a queue
//! poisoned finds the panic already in [`RunHandle::failure`]. A stage that returns `Err`
//! instead has already dropped its ends, which closes them: a consumer may see a normal end
//! ([`PopError::Disconnected`](shm_queue::PopError::Disconnected)) of a stream cut short.
//! Trust a stream's end only once [`StageHandle::join`] (or [`Run::finish`]) says the run went
//! well, or [`poison`](shm_queue::Producer::poison) your output before returning an error.
//! A stage's threads end with it: join those that hold queue ends before returning, as ends
//! still attached when the process exits look like a dead peer's.
//!
//! # A two-stage pipeline
//! A stage makes numbers, a stage doubles them, the root sums them. The root only reads: a
//! single-threaded root that both fed and drained a pipeline would deadlock as soon as more
//! items were in flight than the rings hold. Stage arguments are plain data: the example
//! derives `bytemuck::Pod`, for which a crate adds `bytemuck = { version = "1", features =
//! ["derive"] }` to its own dependencies.
//! ```
//! use runtime::{QueueName, RunHandle, Runtime, StageResult};
//! use shm_queue::{PopError, Queue, QueueOptions, Spsc};
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Args {
//!     input: QueueName,
//!     output: QueueName,
//! }
//!
//! fn numbers(_run: &RunHandle, output: QueueName) -> StageResult {
//!     let mut tx = Queue::<u64, Spsc>::open(output.as_str())?.producer()?;
//!     for i in 0..100_000 {
//!         tx.push(i)?;
//!     }
//!     Ok(0) // dropping `tx` ends the stream
//! }
//!
//! fn double(_run: &RunHandle, args: Args) -> StageResult {
//!     let mut rx = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?;
//!     let mut tx = Queue::<u64, Spsc>::open(args.output.as_str())?.producer()?;
//!     loop {
//!         match rx.pop() {
//!             Ok(v) => tx.push(v * 2)?,
//!             Err(PopError::Disconnected) => return Ok(0), // the stream ended
//!             Err(broken) => return Err(broken.into()),   // poisoned, or a peer died
//!         }
//!     }
//! }
//!
//! let mut builder = Runtime::builder();
//! let numbers = builder.register("numbers", numbers);
//! let double = builder.register("double", double);
//! let run = builder.start()?;
//! let (_input, input_name) = run.create_queue::<u64, Spsc>(QueueOptions::new(1024))?;
//! let (output, output_name) = run.create_queue::<u64, Spsc>(QueueOptions::new(1024))?;
//! let source = run.spawn(numbers, &input_name)?;
//! let doubler = run.spawn(double, &Args { input: input_name, output: output_name })?;
//! let mut rx = output.consumer()?;
//! let mut sum = 0;
//! loop {
//!     match rx.pop() {
//!         Ok(v) => sum += v,
//!         Err(PopError::Disconnected) => break,
//!         // A queue error is most often the echo of a stage's failure: report that instead.
//!         Err(broken) => return Err(run.failure().map_or_else(|| broken.into(), Into::into)),
//!     }
//! }
//! source.join()?;
//! doubler.join()?; // now the stream's end is known to be its real end
//! assert_eq!(sum, 99_999 * 100_000);
//! run.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations, clippy::undocumented_unsafe_blocks)]

mod cgroup;
mod children;
mod cleanup;
mod entry;
mod error;
mod handle;
mod memory_cgroup;
mod oom;
mod prefix;
mod process;
mod process_room;
mod request;
mod run;
mod server;
mod signals;
mod table;

pub use cgroup::{Cgroup, CgroupVersion};
pub use cleanup::{find_stale, remove_stale, CleanupReport};
pub use entry::Entry;
pub use error::{ExitStatus, RuntimeError, StageResult};
pub use handle::{RunHandle, StageExit, StageHandle};
pub use memory_cgroup::MemoryCgroup;
pub use oom::STAGE_BIAS;
pub use prefix::{root_of, run_prefix_of, RunRoot, NAME_PREFIX};
pub use process_room::{process_room, ProcessLimit, ProcessRoom};
pub use request::{QueueName, ARGS_MAX};
pub use run::{Run, Runtime};
pub use server::SERVER_NAME;
pub use table::{StageId, MAX_STAGES};
