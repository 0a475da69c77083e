//! How much more memory this process's memory cgroup lets its processes use: the limit a
//! container's `--memory`, a Kubernetes pod's `limits.memory` or a batch system's job sets.
//!
//! Shared memory is charged to the cgroup of the process that first touches each page, and a
//! run's stages are forked into the cgroup of the process that starts it; so past the limit a
//! stage is reclaimed from or killed by the kernel's OOM killer, however much `/dev/shm` and
//! the machine have free. Both cgroup versions are read: v2 (`memory.max`, `memory.current`
//! at every level up to the root, where a parent's limit binds its children) and v1
//! (`memory.stat`'s `hierarchical_memory_limit`, which is already the least over the
//! ancestors, and `memory.usage_in_bytes`). The cgroup is found from `/proc/self/cgroup` and
//! the mount table, as a container sees them.
//!
//! Swap counts as room, as in [`shared_memory`](crate::shared_memory): shared memory can be
//! swapped out. The answer is an estimate meant to refuse what certainly cannot fit, so where
//! a swap limit cannot be read the machine's free swap is taken.

use std::path::{Path, PathBuf};

/// Limits at or above this are "no limit": cgroup v1 writes an unlimited limit as the largest
/// page-aligned `i64` (9,223,372,036,854,771,712).
const UNLIMITED: u64 = 1 << 62;

/// Which cgroup interface holds the memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Bytes this process's memory cgroup still lets its processes charge, swap included (at most
/// `swap_free` of it); `None` when no memory limit applies or none can be read.
///
/// ```
/// // On a machine without a memory limit: `None`.
/// let room = sieve::memory_limit::cgroup_room(0);
/// assert!(room.is_none_or(|bytes| bytes < u64::MAX));
/// ```
pub fn cgroup_room(swap_free: u64) -> Option<u64> {
    let (version, dir) = memory_cgroup()?;
    match version {
        Version::V1 => room_v1(&dir, swap_free),
        Version::V2 => room_v2(&dir, swap_free),
    }
}

/// The directory of this process's memory cgroup, where it can be read: with a memory
/// controller mounted at cgroup v1, its `memory.limit_in_bytes` sets a limit; at v2,
/// `memory.max`.
pub fn memory_cgroup_dir() -> Option<PathBuf> {
    memory_cgroup().map(|(_, dir)| dir)
}

fn memory_cgroup() -> Option<(Version, PathBuf)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    memory_cgroup_dir_in(&mountinfo, &cgroups)
}

/// The directory of this process's memory cgroup, from the texts of `/proc/self/mountinfo`
/// and `/proc/self/cgroup`. A v1 memory controller takes precedence: where it is mounted, the
/// unified (v2) hierarchy has no memory controller.
fn memory_cgroup_dir_in(mountinfo: &str, cgroups: &str) -> Option<(Version, PathBuf)> {
    // `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`, with `0::PATH` for v2.
    let path_of = |wanted: fn(&str) -> bool| {
        cgroups.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            wanted(controllers).then_some(path)
        })
    };
    // `/proc/self/mountinfo`: `ID PARENT DEV ROOT MOUNT_POINT OPTIONS [TAGS…] - FSTYPE SOURCE SUPER_OPTIONS`.
    let mount_of = |wanted: fn(&str, &str) -> bool| {
        mountinfo.lines().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mut rest = after.split(' ');
            let (fstype, _, options) = (rest.next()?, rest.next()?, rest.next().unwrap_or(""));
            wanted(fstype, options).then_some((*fields.get(3)?, *fields.get(4)?))
        })
    };
    let v1 = (
        Version::V1,
        path_of(|controllers| controllers.split(',').any(|c| c == "memory")),
        mount_of(|fstype, options| fstype == "cgroup" && options.split(',').any(|o| o == "memory")),
    );
    let v2 = (Version::V2, path_of(str::is_empty), mount_of(|fstype, _| fstype == "cgroup2"));
    [v1, v2].into_iter().find_map(|(version, path, mount)| {
        let (path, (root, mount_point)) = (path?, mount?);
        // The mount shows the hierarchy from `root` down (a container's own subtree, say).
        let below = Path::new(path).strip_prefix(root).ok()?;
        Some((version, Path::new(&unescape_mount_path(mount_point)).join(below)))
    })
}

/// Mount points in `mountinfo` write space, tab, newline and backslash as octal escapes.
fn unescape_mount_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4).and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A number from a cgroup file: `None` for "max", unlimited, or anything unreadable.
fn read_limit(path: &Path) -> Option<u64> {
    let value: u64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (value < UNLIMITED).then_some(value)
}

fn read_usage(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// cgroup v1: the hierarchical limit less the usage; with swap accounting, also the
/// memory-and-swap limit less its usage.
fn room_v1(dir: &Path, swap_free: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let value: u64 =
            stat.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))?.trim().parse().ok()?;
        (value < UNLIMITED).then_some(value)
    };
    let memory = field("hierarchical_memory_limit")?
        .saturating_sub(read_usage(&dir.join("memory.usage_in_bytes"))?)
        .saturating_add(swap_free);
    let with_swap = field("hierarchical_memsw_limit")
        .zip(read_usage(&dir.join("memory.memsw.usage_in_bytes")))
        .map(|(limit, usage)| limit.saturating_sub(usage));
    Some(with_swap.map_or(memory, |both| both.min(memory)))
}

/// cgroup v2: the least room over this cgroup and its ancestors that set `memory.max`.
fn room_v2(dir: &Path, swap_free: u64) -> Option<u64> {
    dir.ancestors()
        .map_while(|level| {
            // Stop at the hierarchy's root, which has no memory files (or above the mount).
            level.join("memory.current").exists().then_some(level)
        })
        .filter_map(|level| {
            let memory =
                read_limit(&level.join("memory.max"))?.saturating_sub(read_usage(&level.join("memory.current"))?);
            let swap = read_limit(&level.join("memory.swap.max"))
                .zip(read_usage(&level.join("memory.swap.current")))
                .map_or(swap_free, |(limit, usage)| limit.saturating_sub(usage).min(swap_free));
            Some(memory.saturating_add(swap))
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_a_v1_memory_controller_before_the_unified_hierarchy() {
        let cgroups = "9:name=systemd:/\n4:memory:/jobs/42\n1:cpu:/\n0::/\n";
        assert_eq!(
            memory_cgroup_dir_in(HYBRID_MOUNTS, cgroups),
            Some((Version::V1, PathBuf::from("/sys/fs/cgroup/memory/jobs/42")))
        );
    }

    #[test]
    fn finds_a_v2_cgroup_below_the_mount_root() {
        // A container whose cgroup namespace was not unshared: the mount shows its subtree.
        let mounts = "29 23 0:26 /kubepods/pod7 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let cgroups = "0::/kubepods/pod7/ctr\n";
        assert_eq!(memory_cgroup_dir_in(mounts, cgroups), Some((Version::V2, PathBuf::from("/sys/fs/cgroup/ctr"))));
        // No cgroup file system mounted: nothing to read.
        assert_eq!(memory_cgroup_dir_in("", cgroups), None);
        assert_eq!(unescape_mount_path("/mnt/with\\040space\\\\x"), "/mnt/with space\\\\x");
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
        let root = scratch("v2");
        let job = root.join("job");
        let step = job.join("step");
        // The parent's limit binds (100 MiB, 30 MiB used) below the child's (1 GiB).
        write(&job, &[("memory.max", "104857600\n"), ("memory.current", "31457280\n")]);
        write(&step, &[("memory.max", "1073741824\n"), ("memory.current", "10485760\n")]);
        assert_eq!(room_v2(&step, 0), Some(70 << 20));
        // Swap the cgroup may still use adds to the room, up to what the machine has free.
        write(&job, &[("memory.swap.max", "20971520\n"), ("memory.swap.current", "0\n")]);
        assert_eq!(room_v2(&step, 1 << 30), Some(90 << 20));
        assert_eq!(room_v2(&step, 5 << 20), Some(75 << 20));
        // No limit anywhere.
        write(&job, &[("memory.max", "max\n")]);
        write(&step, &[("memory.max", "max\n")]);
        assert_eq!(room_v2(&step, 0), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn v1_takes_the_hierarchical_limit_and_memsw() {
        let dir = scratch("v1");
        let unlimited = "9223372036854771712";
        write(
            &dir,
            &[
                (
                    "memory.stat",
                    &format!("cache 0\nhierarchical_memory_limit 536870912\nhierarchical_memsw_limit {unlimited}\n"),
                ),
                ("memory.usage_in_bytes", "134217728\n"),
                ("memory.memsw.usage_in_bytes", "134217728\n"),
            ],
        );
        assert_eq!(room_v1(&dir, 0), Some(384 << 20));
        write(&dir, &[("memory.stat", "hierarchical_memory_limit 536870912\nhierarchical_memsw_limit 268435456\n")]);
        assert_eq!(room_v1(&dir, 1 << 30), Some(128 << 20), "memory and swap together bind");
        write(&dir, &[("memory.stat", &format!("hierarchical_memory_limit {unlimited}\n"))]);
        assert_eq!(room_v1(&dir, 0), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
