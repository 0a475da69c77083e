//! Whether a pipeline run's queues fit in the machine's shared memory, asked before it starts.
//!
//! A ring's pages are all reserved when it is made (shm-queue's `posix_fallocate`: a full
//! `/dev/shm` is an error at creation, never a SIGBUS later), and the runtime keeps every ring
//! of a run until the run ends: one input per stage, the source's for stage 0, and the sink.
//! So a large `--queue-depth` times many stages can ask for more than the machine has. Without
//! this check such a run fills `/dev/shm` — on most Linux systems sized to half the memory or
//! all of it — for as long as it grows, before its next ring fails; with it, the run is refused
//! at once, naming a depth that fits.
//!
//! Free memory is the least of three: `/dev/shm`'s free space, the machine's available memory
//! and swap, and what this process's memory cgroup (a container's or a job's limit) still
//! allows ([`runtime::MemoryCgroup::room`]).

use std::fmt;

use shm_queue::{Queue, Spsc, SHM_DIR};

use crate::pipeline::PipelineConfig;

/// A run that needs more shared memory than the machine has free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Rings the run makes at least: one input per stage, the source's for stage 0 (counted
    /// as stage 0's), and the sink.
    pub queues: u64,
    /// Bytes of one ring's segment.
    pub queue_len: u64,
    /// Bytes free: the least of `/dev/shm`'s free space, `MemAvailable` + `SwapFree`, and the
    /// room left under the memory cgroup's limit.
    pub available: u64,
    /// The largest queue depth whose rings would fit (`None`: not even depth 1, so fewer
    /// stages — a larger stage size — are needed).
    pub fitting_depth: Option<u64>,
}

impl Shortfall {
    /// Bytes the run's rings take at least.
    pub fn needed(&self) -> u64 {
        self.queues.saturating_mul(self.queue_len)
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the run needs at least {} of shared memory ({} rings of {}), more than the {} free (the \
             least of {SHM_DIR}'s free space, available memory and swap, and the room under a memory cgroup's limit if one is set)",
            Bytes(self.needed()),
            self.queues,
            Bytes(self.queue_len),
            Bytes(self.available)
        )?;
        match self.fitting_depth {
            Some(depth) => write!(f, ": a queue depth of at most {depth} fits"),
            None => write!(f, ": not even a queue depth of 1 fits; a larger stage size (fewer stages) would"),
        }
    }
}

/// Bytes, for people: `1.5 GiB`, `64.0 KiB`, `512 B`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        // Decided on the rounded value: 1,048,575 bytes is "1.0 MiB", not "1024.0 KiB".
        while (value * 10.0).round() >= 10240.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// Rings for a run of `stage_size` with `primes` primes: one per stage (⌈primes / S⌉, at
/// least one; a stage size of 0 never spawns, so one stage) and the sink.
fn rings_for(primes: u64, stage_size: usize) -> u64 {
    let stages = if stage_size == 0 { 1 } else { primes.div_ceil(stage_size as u64).max(1) };
    stages + 1
}

/// Bytes of one ring of the pipeline with `depth` items (`None`: no valid depth).
fn ring_len(depth: usize) -> Option<u64> {
    Queue::<u64, Spsc>::segment_len(&crate::pipeline::queue_options(depth)).ok().map(|len| len as u64)
}

/// The rings a run with `config` makes, and the length of each: counted from π(N) itself up
/// to [`EXACT_UP_TO`](crate::reference::EXACT_UP_TO), from a lower bound beyond (so at least that many). `None` for a queue
/// depth no queue can have.
pub fn queues_needed(config: &PipelineConfig) -> Option<(u64, u64)> {
    let (fewest_primes, _) = crate::reference::prime_count_range(config.max_number);
    Some((rings_for(fewest_primes, config.stage_size), ring_len(config.queue_depth)?))
}

/// `Some` when the run's rings cannot fit in what is free now; `None` when they can, when the
/// queue depth is not one a queue can have, or when neither `/dev/shm`, `/proc/meminfo` nor
/// a memory cgroup can be read.
///
/// Cheap for runs far from the limit: π(N) is sieved only when its bounds leave the answer
/// open.
pub fn shortfall(config: &PipelineConfig) -> Option<Shortfall> {
    let queue_len = ring_len(config.queue_depth)?;
    let available = available()?;
    let n = config.max_number;
    let fits = |primes: u64| rings_for(primes, config.stage_size).saturating_mul(queue_len) <= available;
    if fits(crate::reference::prime_count_upper_bound(n) as u64) {
        return None;
    }
    let (fewest_primes, most_primes) = crate::reference::prime_count_range(n);
    if fits(fewest_primes) {
        return None;
    }
    // The depth to name must fit the most rings the run can make.
    let budget = available / rings_for(most_primes, config.stage_size);
    // A ring holds a power of two of items, so the depths worth naming are powers of two.
    let fitting_depth = (0..=shm_queue::MAX_CAPACITY.ilog2())
        .rev()
        .map(|k| 1u64 << k)
        .find(|&depth| ring_len(depth as usize).is_some_and(|len| len <= budget));
    Some(Shortfall { queues: rings_for(fewest_primes, config.stage_size), queue_len, available, fitting_depth })
}

/// The least of `/dev/shm`'s free space, the memory available (shared memory is memory, or
/// swap, whatever the file system's size says) and the room under the cgroup's limit.
fn available() -> Option<u64> {
    let (memory, swap_free) = memory_available().unzip();
    let cgroup = runtime::MemoryCgroup::of_this_process().and_then(|cgroup| cgroup.room(swap_free.unwrap_or(0)));
    [free_in_shm_dir(), memory.map(|m| m.saturating_add(swap_free.unwrap_or(0))), cgroup].into_iter().flatten().min()
}

fn free_in_shm_dir() -> Option<u64> {
    let path = std::ffi::CString::new(SHM_DIR).ok()?;
    // SAFETY: all-zero is a valid `statvfs` (plain integers), filled in by the call below.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    // A tmpfs mounted without a size limit reports no blocks at all: only memory limits it.
    if stats.f_blocks == 0 {
        return None;
    }
    Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// `MemAvailable` and `SwapFree` (0 if absent), from `/proc/meminfo`.
fn memory_available() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|line| line.starts_with(name))?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib.saturating_mul(1024))
    };
    Some((field("MemAvailable:")?, field("SwapFree:").unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_number: u64, stage_size: usize, queue_depth: usize) -> PipelineConfig {
        PipelineConfig { max_number, stage_size, queue_depth, sqrt_cutoff: false }
    }

    #[test]
    fn a_small_run_fits() {
        // 97 rings of ~36 KiB: under 4 MiB, which any machine running these tests has free.
        assert_eq!(shortfall(&config(100_000, 100, 4096)), None);
    }

    #[test]
    fn a_run_beyond_any_machine_is_refused_naming_a_depth_that_fits() {
        // ≥ 36,000 stages of 8 GiB rings: ~280 TiB.
        let refused = shortfall(&config(1_000_000_000_000, 1_000_000, 1 << 30)).expect("refused");
        assert!(refused.queues > 36_000, "{refused:?}");
        assert!(refused.queue_len >= 8 << 30, "{refused:?}");
        assert!(refused.needed() > refused.available);
        let depth = refused.fitting_depth.expect("a depth of 1 fits 40,000 rings on any test machine");
        // The named depth fits the most rings the run can make (π(N) from above), the next
        // power of two does not fit even the fewest.
        let most = rings_for(crate::reference::prime_count_upper_bound(1_000_000_000_000) as u64, 1_000_000);
        assert!(ring_len(depth as usize).unwrap() * most <= refused.available, "the named depth fits");
        assert!(ring_len(2 * depth as usize).unwrap() * refused.queues > refused.available);
        let message = refused.to_string();
        assert!(message.contains("TiB of shared memory") && message.contains("GiB)"), "{message}");
        assert!(message.ends_with(&format!("a queue depth of at most {depth} fits")), "{message}");
    }

    #[test]
    fn queues_are_counted_per_stage_plus_the_sink() {
        // π(10^6) = 78,498: 785 stages of 100, and the sink.
        let (queues, queue_len) = queues_needed(&config(1_000_000, 100, 8192)).unwrap();
        assert_eq!(queues, 786);
        assert!(queue_len >= 8192 * 8, "{queue_len}");
        // 2, 3, 5 | 7: two stages.
        assert_eq!(queues_needed(&config(10, 3, 10)).unwrap().0, 3);
        assert_eq!(queues_needed(&config(2, 3, 10)).unwrap().0, 2, "stage 0 and the sink at least");
        assert_eq!(queues_needed(&config(1_000_000, 0, 10)).unwrap().0, 2, "a stage size of 0 never spawns");
        // Beyond the exact count, a lower bound: π(10^9) = 50,847,534, the bound 48,254,942.
        let (queues, _) = queues_needed(&config(1_000_000_000, 1000, 10)).unwrap();
        assert!((48_000..=50_849).contains(&queues), "{queues}");
        assert_eq!(queues_needed(&config(100, 3, 0)), None, "no ring has depth 0");
    }

    #[test]
    fn bytes_read_like_a_person_would_write_them() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(64 * 1024).to_string(), "64.0 KiB");
        assert_eq!(Bytes((1 << 20) - 1).to_string(), "1.0 MiB");
        assert_eq!(Bytes(3 << 29).to_string(), "1.5 GiB");
        assert_eq!(Bytes(u64::MAX).to_string(), "16.0 EiB");
    }
}
