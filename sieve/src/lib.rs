//! The dynamic prime-number pipeline of the DragonHPC cookbook, rebuilt on shmpipe.
//!
//! The original Python example (`prime_numbers.py`) grows a chain of processes on the fly:
//! each stage holds a few primes, drops numbers they divide, forwards the rest, and spawns the
//! next stage when it is full. This library holds the parts of that program that need no
//! processes or queues, so they can be tested exactly and shared by both execution modes:
//!
//! - [`divisibility`]: a division-free exact divisibility test;
//! - [`prime_scan`]: a stage's primes and the original's inner loop over them, eight at a time
//!   where the CPU can;
//! - [`stage_logic`]: one stage's decision per number, verbatim from the original;
//! - [`sequential`]: the whole pipeline in one process (baseline and oracle), number by number
//!   or block by block through each stage;
//! - [`reference`](mod@reference): an independent segmented sieve, for `--verify`;
//! - [`output`]: the original's text output, byte for byte;
//! - [`summary`]: JSON and one-line run summaries;
//! - [`draw`]: an SVG picture of the grown pipeline;
//! - [`pipeline`]: the real thing, every stage its own process on the shmpipe runtime;
//! - [`stage_room`]: whether a run's stage processes can all start;
//! - [`shared_memory`]: whether a run's queues fit in the machine's shared memory;
//! - [`progress`]: a progress bar on a terminal's stderr for long runs.

#![warn(missing_docs)]

pub mod divisibility;
pub mod draw;
pub mod output;
pub mod pipeline;
pub mod prime_scan;
pub mod progress;
pub mod reference;
pub mod sequential;
pub mod shared_memory;
pub mod stage_logic;
pub mod stage_room;
pub mod summary;
