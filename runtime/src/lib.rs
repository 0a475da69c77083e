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
//! [`RuntimeError::BadStart`] otherwise), and no process of the run starts threads of its own:
//! `fork` copies only the calling thread.
//!
//! # A two-stage pipeline
//! ```no_run
//! use runtime::{QueueName, RunHandle, Runtime, StageResult};
//! use shm_queue::{Mpsc, Queue, QueueOptions, Spsc};
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Args {
//!     input: QueueName,
//!     output: QueueName,
//! }
//!
//! fn double(_run: &RunHandle, args: Args) -> StageResult {
//!     let mut rx = Queue::<u64, Spsc>::open(args.input.as_str())?.consumer()?;
//!     let mut tx = Queue::<u64, Spsc>::open(args.output.as_str())?.producer()?;
//!     while let Ok(v) = rx.pop() {
//!         tx.push(v * 2)?;
//!     }
//!     Ok(0)
//! }
//!
//! let mut builder = Runtime::builder();
//! let double = builder.register("double", double);
//! let run = builder.start()?;
//! let (input, input_name) = run.create_queue::<u64, Spsc>(QueueOptions::new(64))?;
//! let (output, output_name) = run.create_queue::<u64, Spsc>(QueueOptions::new(64))?;
//! let stage = run.spawn(double, &Args { input: input_name, output: output_name })?;
//! let mut tx = input.producer()?;
//! let mut rx = output.consumer()?;
//! for i in 0..10 {
//!     tx.push(i)?;
//! }
//! drop(tx);
//! let sum: u64 = std::iter::from_fn(|| rx.pop().ok()).sum();
//! assert_eq!(sum, 90);
//! stage.join()?;
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
