//! Whether a pipeline run's queues fit in the machine's shared memory, asked before it starts.
//!
//! Every stage keeps the ring it reads from for its whole life, and a ring's pages are all
//! reserved when it is made (shm-queue's `posix_fallocate`: a full `/dev/shm` is an error at
//! creation, never a SIGBUS later). So a run takes about one ring per stage at once, and a
//! large `--queue-depth` times many stages can ask for more than the machine has. Without this
//! check such a run fills `/dev/shm` — on most Linux systems sized to half the memory or all of
//! it — for as long as it grows, before its next ring fails; with it, the run is refused at
//! once.

use std::fmt;

use shm_queue::{Queue, Spsc, SHM_DIR};

use crate::pipeline::PipelineConfig;

/// A run that needs more shared memory than the machine has free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Queues the run makes at least: the source's, and one per stage it needs at least.
    pub queues: u64,
    /// Bytes of one queue's segment.
    pub queue_len: u64,
    /// Bytes free: the least of `/dev/shm`'s free space and the memory available.
    pub available: u64,
}

impl Shortfall {
    /// Bytes the run's queues take at least.
    pub fn needed(&self) -> u64 {
        self.queues.saturating_mul(self.queue_len)
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the run needs at least {} of shared memory ({} queues of {}), more than the {} free \
             in {SHM_DIR} and memory",
            Bytes(self.needed()),
            self.queues,
            Bytes(self.queue_len),
            Bytes(self.available)
        )
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
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// The queues a run with `config` makes at least, and the length of each.
///
/// Counts the stages from the primes up to N — exactly up to [`EXACT_UP_TO`], from a lower
/// bound beyond — so a run refused here would certainly not fit.
pub fn queues_needed(config: &PipelineConfig) -> Option<(u64, u64)> {
    let primes = if config.max_number <= EXACT_UP_TO {
        crate::reference::count_primes_up_to(config.max_number)
    } else {
        crate::reference::prime_count_lower_bound(config.max_number)
    };
    let stages = primes.div_ceil(config.stage_size.max(1) as u64).max(1);
    let options = crate::pipeline::queue_options(config.queue_depth);
    let queue_len = Queue::<u64, Spsc>::segment_len(&options).ok()? as u64;
    // Stage k ≥ 1 reads a ring its parent made; stage 0 reads the source's; the root reads the
    // sink.
    Some((stages + 1, queue_len))
}

/// Up to here the stages are counted from π(N) itself (a few ms of sieving at most, against a
/// run of seconds); the lower bound is loose for small N (it says 0 primes below 17).
pub const EXACT_UP_TO: u64 = 10_000_000;

/// `Some` when the run's queues cannot fit in what is free now; `None` when they can, or when
/// neither `/dev/shm` nor `/proc/meminfo` can be read.
pub fn shortfall(config: &PipelineConfig) -> Option<Shortfall> {
    let (queues, queue_len) = queues_needed(config)?;
    let available = available()?;
    let shortfall = Shortfall { queues, queue_len, available };
    (shortfall.needed() > available).then_some(shortfall)
}

/// The least of `/dev/shm`'s free space and the memory available (shared memory is memory,
/// or swap, whatever the file system's size says).
fn available() -> Option<u64> {
    [free_in_shm_dir(), memory_available()].into_iter().flatten().min()
}

fn free_in_shm_dir() -> Option<u64> {
    let path = std::ffi::CString::new(SHM_DIR).ok()?;
    // SAFETY: all-zero is a valid `statvfs` (plain integers), filled in by the call below.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// `MemAvailable` plus `SwapFree`, from `/proc/meminfo`.
fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|line| line.starts_with(name))?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib.saturating_mul(1024))
    };
    Some(field("MemAvailable:")?.saturating_add(field("SwapFree:").unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_number: u64, stage_size: usize, queue_depth: usize) -> PipelineConfig {
        PipelineConfig { max_number, stage_size, queue_depth, sqrt_cutoff: false }
    }

    #[test]
    fn a_small_run_fits() {
        assert_eq!(shortfall(&config(100_000, 100, 4096)), None);
    }

    #[test]
    fn a_run_beyond_any_machine_is_refused() {
        // ≥ 36,000 stages of 8 GiB rings: ~280 TiB.
        let refused = shortfall(&config(1_000_000_000_000, 1_000_000, 1 << 30)).expect("refused");
        assert!(refused.queues > 36_000, "{refused:?}");
        assert!(refused.queue_len >= 8 << 30, "{refused:?}");
        assert!(refused.needed() > refused.available);
        let message = refused.to_string();
        assert!(message.contains("TiB of shared memory") && message.contains("GiB)"), "{message}");
    }

    #[test]
    fn queues_are_counted_per_stage_plus_the_source_s() {
        // π(10^6) = 78,498: 785 stages of 100, and the source's queue.
        let (queues, queue_len) = queues_needed(&config(1_000_000, 100, 8192)).unwrap();
        assert_eq!(queues, 786);
        assert!(queue_len >= 8192 * 8, "{queue_len}");
        // 2, 3, 5 | 7: two stages.
        assert_eq!(queues_needed(&config(10, 3, 10)).unwrap().0, 3);
        assert_eq!(queues_needed(&config(2, 3, 10)).unwrap().0, 2, "stage 0 and the source's queue at least");
        // Beyond the exact count, a lower bound: π(10^9) = 50,847,534, the bound 48,254,942.
        let (queues, _) = queues_needed(&config(1_000_000_000, 1000, 10)).unwrap();
        assert!((48_000..=50_849).contains(&queues), "{queues}");
    }

    #[test]
    fn bytes_read_like_a_person_would_write_them() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(64 * 1024).to_string(), "64.0 KiB");
        assert_eq!(Bytes(3 << 29).to_string(), "1.5 GiB");
        assert_eq!(Bytes(u64::MAX).to_string(), "16.0 EiB");
    }
}
