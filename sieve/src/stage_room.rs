//! Whether all of a run's stage processes can start. Every stage lives until the run ends, so
//! a run needs its ⌈π(N)/S⌉ stages at once, besides its source and the fork server. One run's
//! table holds [`MAX_PIPELINE_STAGES`] of them, and the machine may allow fewer
//! ([`runtime::process_room`]: `kernel.pid_max`, a pids cgroup's limit, `ulimit -u`). A run that
//! certainly needs more is refused before it starts, instead of taking every free pid from the
//! machine and failing stages in.

use std::fmt;

use runtime::ProcessLimit;

use crate::pipeline::PipelineConfig;

/// The most stages one pipeline run can have: the runtime's table holds `MAX_STAGES - 1`
/// processes over a run's life, and the source is one of them.
pub const MAX_PIPELINE_STAGES: u64 = runtime::MAX_STAGES as u64 - 2;

/// A run that needs more stages than can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageShortfall {
    /// Stages the run needs at least.
    pub needed: u64,
    /// Stages that can start: [`MAX_PIPELINE_STAGES`], or fewer where the machine's room (less
    /// the source and the fork server) is smaller.
    pub most: u64,
    /// The machine's limit that sets `most`; `None` when it is one run's table.
    pub limit: Option<ProcessLimit>,
    /// The smallest stage size that surely fits; `None` when none does (within 32 bits, or at
    /// all: no room for a single stage).
    pub fitting_stage_size: Option<u32>,
}

impl fmt::Display for StageShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the run needs at least {} stage processes, ", self.needed)?;
        match &self.limit {
            Some(limit) => write!(f, "but this machine can start only {} more now ({limit})", self.most)?,
            None => write!(f, "more than the {} one run can start", self.most)?,
        }
        match self.fitting_stage_size {
            Some(size) => write!(f, ": a stage size of {size} or more fits"),
            None => write!(f, ": no stage size fits; a smaller N would"),
        }
    }
}

/// `Some` when the run certainly needs more stages than can start now; see the
/// [module](self).
pub fn shortfall(config: &PipelineConfig) -> Option<StageShortfall> {
    let (most, limit) = match runtime::process_room() {
        // Besides the stages: the source and the fork server (the root exists already).
        Some(room) if room.processes.saturating_sub(2) < MAX_PIPELINE_STAGES => {
            (room.processes.saturating_sub(2), Some(room.limit))
        }
        _ => (MAX_PIPELINE_STAGES, None),
    };
    let (needed, size) = stages_beyond(config.max_number, config.stage_size as u64, most)?;
    let fitting_stage_size = (most > 0).then(|| u32::try_from(size).ok()).flatten();
    Some(StageShortfall { needed, most, limit, fitting_stage_size })
}

/// When `max_number` and `stage_size` certainly need more than `most` stages: `Some((at least
/// this many stages, the smallest stage size that surely fits))`. A run needs ⌈π(N)/S⌉
/// stages, counted from π(N) itself up to [`EXACT_UP_TO`](crate::reference::EXACT_UP_TO) and
/// bounded beyond.
///
/// ```
/// use sieve::stage_room::{stages_beyond, MAX_PIPELINE_STAGES};
/// assert_eq!(stages_beyond(2_000_000, 15, MAX_PIPELINE_STAGES), None); // 9,929 stages
/// let (needed, size) = stages_beyond(100_000_000, 3, MAX_PIPELINE_STAGES).unwrap();
/// assert!(needed > 1_000_000 && size >= 88);
/// // π(850,000) = 67,617 itself, where its lower bound (62,052) would have let the run start.
/// assert_eq!(stages_beyond(850_000, 1, MAX_PIPELINE_STAGES), Some((67_617, 2)));
/// ```
pub fn stages_beyond(max_number: u64, stage_size: u64, most: u64) -> Option<(u64, u64)> {
    let stages = |primes: u64| primes.div_ceil(stage_size.max(1)).max(1);
    // The upper bound first: it settles runs far from the limit without sieving.
    if stages(crate::reference::prime_count_upper_bound(max_number) as u64) <= most {
        return None;
    }
    let (fewest_primes, most_primes) = crate::reference::prime_count_range(max_number);
    let needed = stages(fewest_primes);
    (needed > most).then(|| (needed, most_primes.div_ceil(most.max(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_the_limit_and_a_stage_size_that_fits() {
        let mut shortfall = StageShortfall {
            needed: 96,
            most: 37,
            limit: Some(ProcessLimit::Cgroup("/sys/fs/cgroup/pids/job".into())),
            fitting_stage_size: Some(340),
        };
        assert_eq!(
            shortfall.to_string(),
            "the run needs at least 96 stage processes, but this machine can start only 37 more now \
             (pids.max of the cgroup /sys/fs/cgroup/pids/job): a stage size of 340 or more fits"
        );
        (shortfall.limit, shortfall.most, shortfall.fitting_stage_size) = (None, MAX_PIPELINE_STAGES, None);
        assert_eq!(
            shortfall.to_string(),
            "the run needs at least 96 stage processes, more than the 65534 one run can start: no stage \
             size fits; a smaller N would"
        );
    }

    #[test]
    fn no_room_at_all_names_no_stage_size() {
        assert_eq!(stages_beyond(100, 3, 0), Some((9, 25)));
        let config = PipelineConfig { max_number: u64::MAX - 1, stage_size: 1, queue_depth: 1, sqrt_cutoff: false };
        let shortfall = shortfall(&config).expect("2^64 numbers need more stages than anything allows");
        assert_eq!(shortfall.fitting_stage_size, None, "beyond 32 bits: {shortfall:?}");
    }
}
