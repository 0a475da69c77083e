//! Bounded lock-free ring queues in POSIX shared memory.
//!
//! A queue lives in a segment made by `shm_open` + `mmap`; any process that knows its name can
//! attach a [`Producer`] or a [`Consumer`]. Four kinds: [`Spsc`] (a Lamport ring with cached
//! indices), and [`Mpsc`], [`Spmc`], [`Mpmc`] (Vyukov's bounded queue with per-slot sequence
//! numbers). No lock on any path. Elements are plain old data ([`bytemuck::Pod`]): no
//! pointers, no `Drop`, meaningful in every process.
//!
//! - **Zero copy**: [`Producer::write_chunk`] hands out slots in the segment to write in place;
//!   [`Consumer::read_chunk`] hands out items in place.
//! - **Backpressure**: [`push`](Producer::push) blocks while full, [`pop`](Consumer::pop) while
//!   empty: a short adaptive spin where it can pay, then a *shared* futex sleep. Nobody makes a
//!   system call while nobody sleeps. See [`WakePolicy`] for batching wake-ups.
//! - **Close, poison, dead peers**: the last producer out closes the queue (consumers drain,
//!   then get [`PopError::Disconnected`]), for good: when producers attach one after another,
//!   keep one end (the creator's own, say) until all have attached. [`Queue::poison`] breaks
//!   it for everyone, and so does an end dropped while its thread panics (a stream cut short
//!   must not look like one that ended). An end whose process died (pid + start time, from `/proc`) is found by
//!   the other side's waiting calls, within about the re-check period
//!   ([`QueueOptions::recheck`]; time asleep in calls with shorter timeouts adds up): they
//!   poison the queue and report [`PopError::PeerDead`] / [`PushError::PeerDead`]. The `try_`
//!   calls never check (a poller calls [`Consumer::check_peers`] / [`Producer::check_peers`]
//!   now and then), and a poisoned queue delivers nothing more, to any end. Nothing can tell
//!   a peer that has not attached yet from one that never will: wait with a timeout where
//!   that matters.
//! - **Untrusted memory**: capacity and mask come from each handle's own copy; nothing read
//!   from a segment can send an access out of bounds. Bounds, not more: a process that
//!   rewrites a ring's indices can make two ends see the same slot at once (torn items, or a
//!   slot read while written), and one that shrinks the segment makes its users fault
//!   (SIGBUS). Every process that can write a segment is trusted to run this library.
//! - **One PID namespace per queue**: pids are judged in `/proc`, so a segment records its
//!   creator's [`PidNamespace`], and a process of another namespace (a container sharing only
//!   `/dev/shm`) gets [`OpenError::OtherPidNamespace`] instead of peers that all look dead.
//!   (Where `/proc` cannot tell a process its namespace, neither side can check.)
//!
//! Two processes sharing a queue by name:
//!
//! ```
//! use shm_queue::{PopError, Queue, Spsc};
//!
//! let name = format!("/shmpipe-doc-{}", std::process::id());
//! let queue = Queue::<u64, Spsc>::create(&name, 1024)?;
//! // SAFETY (of the example): this doctest process has a single thread.
//! match unsafe { libc::fork() } {
//!     0 => {
//!         // The child attaches by name and produces.
//!         let mut tx = Queue::<u64, Spsc>::open(&name).unwrap().producer().unwrap();
//!         for i in 0..10_000 {
//!             tx.push(i).unwrap();
//!         }
//!         drop(tx); // closes the queue
//!         unsafe { libc::_exit(0) };
//!     }
//!     pid => {
//!         let mut rx = queue.consumer()?;
//!         let mut sum = 0;
//!         loop {
//!             match rx.pop() {
//!                 Ok(v) => sum += v,
//!                 // Every producer has left and the ring is drained: the normal end.
//!                 Err(PopError::Disconnected) => break,
//!                 // `PeerDead`: the producer died without leaving; `Poisoned`.
//!                 Err(broken) => return Err(broken.into()),
//!             }
//!         }
//!         assert_eq!(sum, (0..10_000).sum::<u64>());
//!         unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
//!     }
//! }
//! // Dropping `queue` (its creator) removes the name from /dev/shm.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Your own element types derive [`Pod`] and [`Zeroable`] (`#[repr(C)]`, no padding). The
//! derives expand to paths into `bytemuck`, so a crate that uses them depends on it directly:
//! `bytemuck = { version = "1", features = ["derive"] }` (the example above also uses
//! `libc` for its `fork`). Element types must be `Pod`; a `String` is refused at compile time:
//!
//! ```compile_fail
//! let q = shm_queue::Queue::<String, shm_queue::Spsc>::create("/x", 8);
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations, clippy::undocumented_unsafe_blocks)]

pub(crate) mod control;
pub mod error;
mod fingerprint;
pub(crate) mod header;
mod kind;
mod name;
pub(crate) mod region;
pub(crate) mod ring;
pub(crate) mod sync;
mod wake;

#[cfg(not(loom))]
mod attached;
#[cfg(not(loom))]
mod consumer;
#[cfg(not(loom))]
mod endpoint;
#[cfg(not(loom))]
pub mod futex;
#[cfg(not(loom))]
mod inspect;
mod liveness;
mod pid_namespace;
#[cfg(not(loom))]
mod producer;
#[cfg(not(loom))]
mod queue;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
mod wait;

pub use bytemuck::{Pod, Zeroable};
pub use error::{AttachError, CreateError, NameError, OpenError, PopError, PushError, UnlinkError};
pub use fingerprint::TypeFingerprint;
pub use header::{HeaderInfo, FORMAT_VERSION, MAX_CAPACITY};
pub use kind::{Kind, KindId, Mpmc, Mpsc, MultiConsumer, MultiProducer, SingleProducer, Spmc, Spsc};
pub use name::{ShmName, MAX_NAME_LEN};
pub use wake::WakePolicy;

#[cfg(not(loom))]
pub use attached::Handover;
#[cfg(not(loom))]
pub use consumer::{Consumer, ReadChunk};
#[cfg(not(loom))]
pub use control::MAX_ENDPOINTS;
#[cfg(not(loom))]
pub use endpoint::{EndpointInfo, EndpointState, Role};
#[cfg(not(loom))]
pub use inspect::Inspector;
pub use liveness::{ForkClock, Liveness, ProcessId, ProcessStatus};
pub use pid_namespace::{GoneNamespaces, PidNamespace};
#[cfg(not(loom))]
pub use producer::{Producer, WriteChunk};
#[cfg(not(loom))]
pub use queue::{Queue, QueueOptions};
#[cfg(not(loom))]
pub use segment::{list, unlink, Segment, SHM_DIR};
#[cfg(not(loom))]
pub use stats::{QueueStats, SideSnapshot};
