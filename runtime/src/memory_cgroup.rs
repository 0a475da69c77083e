//! This process's memory cgroup: where it is, how much more memory its processes may use, and
//! how many of them the kernel's OOM killer has ended. The limit is what a container's
//! `--memory`, a Kubernetes pod's `limits.memory` or a batch system's job sets.
//!
//! Shared memory is charged to the cgroup of the process that first touches each page, and a
//! run's stages are forked into the cgroup of the process that starts it; so past the limit a
//! stage is reclaimed from or killed by the kernel's OOM killer, however much `/dev/shm` and
//! the machine have free. Both cgroup versions are read: v2 (`memory.max`, `memory.current`
//! at every level up to the mount's root, where a parent's limit binds its children) and v1
//! (`memory.stat`'s `hierarchical_memory_limit`, which is already the least over the
//! ancestors, against this cgroup's own `memory.usage_in_bytes`: what siblings under a
//! binding ancestor use is not seen, so the room can read larger than it is, never smaller).
//! The cgroup is found from `/proc/self/cgroup` and the mount table, as a container sees them.
//!
//! Usage counts the page cache of files read or written, which the kernel drops when it needs
//! the room: a container that has built something sits near its limit with most of it cache.
//! So file cache (`active_file`, `inactive_file`, and v2's `slab_reclaimable`) counts as room;
//! shared memory itself lives on the anonymous lists, not among these.
//!
//! Swap counts as room: shared memory can be swapped out. The room is an estimate meant for
//! refusing what certainly cannot fit, so where a swap limit cannot be read the machine's free
//! swap is taken.
//!
//! ```
//! use runtime::MemoryCgroup;
//! // On a machine without a memory limit the room is `None`.
//! if let Some(cgroup) = MemoryCgroup::of_this_process() {
//!     assert!(cgroup.dir().is_absolute());
//!     assert!(cgroup.room(0).is_none_or(|bytes| bytes < u64::MAX));
//! }
//! ```

use std::path::Path;

use crate::cgroup::{read_number, Cgroup, CgroupVersion};

/// Limits at or above this are "no limit": cgroup v1 writes an unlimited limit as the largest
/// page-aligned `i64` (9,223,372,036,854,771,712).
const UNLIMITED: u64 = 1 << 62;

/// Where this process's memory cgroup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryCgroup(Cgroup);

impl MemoryCgroup {
    /// This process's memory cgroup, from `/proc/self/cgroup` and `/proc/self/mountinfo`;
    /// `None` where no memory controller is mounted or the files cannot be read.
    pub fn of_this_process() -> Option<Self> {
        Cgroup::of_this_process("memory").map(Self)
    }

    /// The cgroup interface it lives in.
    pub fn version(&self) -> CgroupVersion {
        self.0.version()
    }

    /// Its directory: at v1 its `memory.limit_in_bytes` sets a limit, at v2 `memory.max`; a
    /// process joins it by writing its pid to `cgroup.procs` there.
    pub fn dir(&self) -> &Path {
        self.0.dir()
    }

    /// Bytes its processes may still charge, swap included (at most `swap_free` of it, the
    /// machine's free swap); `None` when no memory limit applies or none can be read.
    pub fn room(&self, swap_free: u64) -> Option<u64> {
        match self.0.version {
            CgroupVersion::V1 => room_v1(&self.0.dir, swap_free),
            CgroupVersion::V2 => room_v2(&self.0, swap_free),
        }
    }

    /// How many processes of this cgroup (and, at v2, of those below it) the OOM killer has
    /// ended, whatever limit ran out (v1 `memory.oom_control`, v2 `memory.events`; kernel
    /// 4.13 or later).
    pub fn oom_kills(&self) -> Option<u64> {
        let (file, field) = match self.0.version {
            CgroupVersion::V1 => ("memory.oom_control", "oom_kill"),
            CgroupVersion::V2 => ("memory.events", "oom_kill"),
        };
        stat_field(&std::fs::read_to_string(self.0.dir.join(file)).ok()?, field)
    }
}

/// A number from a cgroup file: `None` for "max", unlimited, or anything unreadable.
fn read_limit(path: &Path) -> Option<u64> {
    read_number(path).filter(|&value| value < UNLIMITED)
}

/// Bytes of file cache in a `memory.stat`, most of which the kernel reclaims before it fails a
/// charge (not pages being written back, nor those mapped and in use): the named fields
/// summed (absent ones count 0). Counted as room all the same: the check refuses only what
/// certainly cannot fit.
fn reclaimable(stat: &str, fields: &[&str]) -> u64 {
    fields.iter().filter_map(|&name| stat_field(stat, name)).fold(0, u64::saturating_add)
}

/// A field of a `name value` text: `memory.stat`, `memory.events`, `memory.oom_control`,
/// `/proc/vmstat`.
pub(crate) fn stat_field(stat: &str, name: &str) -> Option<u64> {
    stat.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))?.trim().parse().ok()
}

/// cgroup v1: the hierarchical limit less the usage that is not file cache; with swap
/// accounting, also the memory-and-swap limit less the same.
fn room_v1(dir: &Path, swap_free: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
    let limit = |name: &str| stat_field(&stat, name).filter(|&value| value < UNLIMITED);
    let cache = reclaimable(&stat, &["total_active_file", "total_inactive_file"]);
    let used = |file: &str| read_number(&dir.join(file)).map(|usage| usage.saturating_sub(cache));
    let memory =
        limit("hierarchical_memory_limit")?.saturating_sub(used("memory.usage_in_bytes")?).saturating_add(swap_free);
    let with_swap = limit("hierarchical_memsw_limit")
        .zip(used("memory.memsw.usage_in_bytes"))
        .map(|(limit, usage)| limit.saturating_sub(usage));
    Some(with_swap.map_or(memory, |both| both.min(memory)))
}

/// cgroup v2: the least room over this cgroup and its ancestors up to `mount_point` that set
/// `memory.max` (a level without the memory controller has no such file, and is skipped).
fn room_v2(place: &Cgroup, swap_free: u64) -> Option<u64> {
    place
        .levels()
        .filter_map(|level| {
            // The limit first: `memory.stat` is costly to read on large hosts, and a level
            // without a limit needs none of the rest.
            let limit = read_limit(&level.join("memory.max"))?;
            let stat = std::fs::read_to_string(level.join("memory.stat")).unwrap_or_default();
            let cache = reclaimable(&stat, &["active_file", "inactive_file", "slab_reclaimable"]);
            let used = read_number(&level.join("memory.current"))?.saturating_sub(cache);
            let memory = limit.saturating_sub(used);
            let swap = read_limit(&level.join("memory.swap.max"))
                .zip(read_number(&level.join("memory.swap.current")))
                .map_or(swap_free, |(limit, usage)| limit.saturating_sub(usage).min(swap_free));
            Some(memory.saturating_add(swap))
        })
        .min()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A v2 cgroup at `dir`, in a hierarchy mounted at `mount_point`.
    fn v2(dir: &Path, mount_point: &Path) -> Cgroup {
        Cgroup { version: CgroupVersion::V2, dir: dir.to_owned(), mount_point: mount_point.to_owned() }
    }

    /// A fresh directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sieve-memory-limit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn v2_takes_the_tightest_level_and_its_swap() {
        let mount = scratch("v2");
        let job = mount.join("job");
        let step = job.join("step");
        // The parent's limit binds (100 MiB, 30 MiB used) below the child's (1 GiB).
        write(&job, &[("memory.max", "104857600\n"), ("memory.current", "31457280\n")]);
        write(&step, &[("memory.max", "1073741824\n"), ("memory.current", "10485760\n")]);
        assert_eq!(room_v2(&v2(&step, &mount), 0), Some(70 << 20));
        // File cache counts as room: the kernel drops it before it fails a charge.
        write(
            &job,
            &[("memory.stat", "anon 1048576\nactive_file 10485760\ninactive_file 5242880\nslab_reclaimable 1048576\n")],
        );
        assert_eq!(room_v2(&v2(&step, &mount), 0), Some(86 << 20));
        // Swap the cgroup may still use adds to the room, up to what the machine has free.
        write(&job, &[("memory.swap.max", "20971520\n"), ("memory.swap.current", "0\n")]);
        assert_eq!(room_v2(&v2(&step, &mount), 1 << 30), Some(106 << 20));
        assert_eq!(room_v2(&v2(&step, &mount), 5 << 20), Some(91 << 20));
        // A level without the memory controller (no files) is passed over, not an end.
        write(&step, &[("memory.max", "max\n")]);
        let leaf = step.join("leaf");
        std::fs::create_dir_all(&leaf).unwrap();
        assert_eq!(room_v2(&v2(&leaf, &mount), 0), Some(86 << 20));
        // Nothing above the mount counts, and no limit anywhere is no answer.
        assert_eq!(room_v2(&v2(&leaf, &step), 0), None);
        write(&job, &[("memory.max", "max\n")]);
        assert_eq!(room_v2(&v2(&leaf, &mount), 0), None);
        std::fs::remove_dir_all(&mount).unwrap();
    }

    #[test]
    fn fields_are_matched_whole() {
        let text = "total_oom_kill 9\noom_kill_disable 0\noom_kill 3\n";
        assert_eq!(stat_field(text, "oom_kill"), Some(3));
        assert_eq!(stat_field(text, "kill"), None);
    }

    #[test]
    fn v1_takes_the_hierarchical_limit_and_memsw() {
        let dir = scratch("v1");
        let unlimited = "9223372036854771712";
        let stat = |memory: &str, memsw: &str| {
            format!("cache 0\nhierarchical_memory_limit {memory}\nhierarchical_memsw_limit {memsw}\ntotal_inactive_file 0\n")
        };
        write(
            &dir,
            &[
                ("memory.stat", &stat("536870912", unlimited)),
                ("memory.usage_in_bytes", "134217728\n"),
                ("memory.memsw.usage_in_bytes", "134217728\n"),
            ],
        );
        assert_eq!(room_v1(&dir, 0), Some(384 << 20));
        write(&dir, &[("memory.stat", &stat("536870912", "268435456"))]);
        assert_eq!(room_v1(&dir, 1 << 30), Some(128 << 20), "memory and swap together bind");
        // 64 MiB of the usage is file cache: room, under both limits.
        let cached = "hierarchical_memory_limit 536870912\nhierarchical_memsw_limit 268435456\n\
                      total_active_file 33554432\ntotal_inactive_file 33554432\n";
        write(&dir, &[("memory.stat", cached)]);
        assert_eq!(room_v1(&dir, 1 << 30), Some(192 << 20));
        write(&dir, &[("memory.stat", &stat(unlimited, unlimited))]);
        assert_eq!(room_v1(&dir, 0), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
